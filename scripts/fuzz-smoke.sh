#!/usr/bin/env bash
# Builds every fuzz target (libFuzzer, AddressSanitizer, debug assertions) and runs each
# from its checked-in seeds for a few seconds: the targets keep compiling, and the seeds
# and the shallow mutations around them keep passing. Real fuzzing runs are longer and
# by hand (fuzz/README.md).
#
#   OTA_FUZZ_SECONDS=N   seconds per target (default 10; 12 targets, `diff_patch` among them)
#
# cargo-fuzz needs nightly rustc flags (-Zsanitizer). Without a nightly toolchain, the
# stable compiler is told to accept them (RUSTC_BOOTSTRAP=1): for this separate fuzz
# workspace only, never for the code we ship.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${OTA_FUZZ_SECONDS:-10}"
toolchain=()
# Asked of rustup, not by running `cargo +nightly`, which may try to download one.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

cargo "${toolchain[@]}" fuzz build -O -a
for target in $(cargo "${toolchain[@]}" fuzz list); do
    corpus=$(mktemp -d)
    log=$(mktemp)
    # The first directory is where libFuzzer writes what it finds: a scratch one, so the
    # checked-in seeds stay as they are.
    status=0
    cargo "${toolchain[@]}" fuzz run -O -a "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" >"$log" 2>&1 || status=$?
    echo "fuzz target $target: $(grep -E '^Done [0-9]+ runs' "$log" || echo 'no summary')"
    rm -rf "$corpus"
    if [[ $status != 0 ]]; then
        tail -n 40 "$log" >&2
        echo "fuzz target $target failed (exit $status): the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    rm -f "$log"
done
