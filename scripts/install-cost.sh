#!/usr/bin/env bash
# What an install costs the ESP32-C3's instruction set: builds the install pipeline
# (ImageVerifier + ota-zstd Decoder<4096, 8192> + writes into a NOR flash in RAM) for
# riscv32imc-unknown-none-elf (firmware/install-cost/harness), runs it under
# `qemu-system-riscv32 -machine virt -icount shift=0` on a full image, on a delta
# (encoding 2: zstd against the base) and on a difference delta (encoding 3: a difference
# stream decoded into the slot, then applied in place sector by sector), and prints
# retired instructions (per stage and per installed byte), the stack high-water mark, the
# heap peak and the pipeline's state. Numbers and their limits: docs/BENCHMARKS.md
# ("Install cost on RV32IMC under qemu").
#
# Input: the real ESP32-C3 firmware ($OTA_ESP32C3_ELF, else where scripts/build-firmware.sh
# leaves it), converted to its app image; when it is not built, the harness's own ELF
# stands in (said in the output); OTA_REQUIRE_ESP32C3_ELF makes a missing firmware fatal.
#
# Fails (exit 1) when an install is refused or miscounted, when a tampered input is not
# refused, or when the stack high-water mark plus the download chunk exceeds the budget.
# Each qemu run is bounded at 60 s (one takes under a second here).
set -euo pipefail
cd "$(dirname "$0")/.."

target=riscv32imc-unknown-none-elf
# The pipeline's RAM: its state (verifier, decoder) lives in its stack frames, so the stack
# high-water mark holds it; the download chunk is the one buffer outside. The update path's
# whole budget is 64 KiB (docs/DESIGN: manifest, verify, decompress, write); this half is
# what verify + decompress + write may take.
budget=$((32 * 1024))
qemu_bound_s=60
# minstret around a call of the runtime's calibration loop: `call` (2) + 2,001 + `ret` (1).
calibration=2004

if ! command -v qemu-system-riscv32 >/dev/null 2>&1; then
    sudo_cmd=""
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
    echo "installing qemu-system-misc (apt)"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq qemu-system-misc >/dev/null
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

harness_dir=firmware/install-cost/harness
harness="$harness_dir/target/$target/release/ota-install-cost"
(
    cd "$harness_dir"
    cargo fmt --check
    cargo build --release --locked --quiet
    cargo clippy --release --locked --quiet -- -D warnings
)

elf="${OTA_ESP32C3_ELF:-firmware/esp32c3/target/$target/release/ota-esp32c3}"
if [[ -f "$elf" ]]; then
    source_args=(--elf "$elf")
    source_label="the ESP32-C3 firmware's app image ($elf)"
elif [[ -n "${OTA_REQUIRE_ESP32C3_ELF:-}" ]]; then
    echo "the ESP32-C3 firmware ELF is required but missing at $elf: run scripts/build-firmware.sh" >&2
    exit 1
else
    source_args=(--raw "$harness")
    source_label="STAND-IN: the harness's own ELF ($elf not built)"
fi
inputs=target/install-cost
cargo run -p ota-install-cost-inputs --locked --quiet -- "${source_args[@]}" --out "$inputs"

# Prints the harness's report (key=value lines, on qemu's stderr); returns its exit status.
run() {
    timeout "$qemu_bound_s" qemu-system-riscv32 -machine virt -bios none -m 64M \
        -kernel "$harness" -display none -serial none -monitor none \
        -icount shift=0 \
        -semihosting-config "enable=on,target=native,arg=ota-install-cost,arg=$inputs/$1.input" 2>&1
}
field() { sed -n "s/^$1=//p" <<<"$2"; }

failed=0
declare -A report
for kind in full delta difference; do
    if ! out=$(run "$kind"); then
        printf '%s install failed:\n%s\n' "$kind" "$out" >&2
        exit 1
    fi
    report[$kind]=$out
    if [[ $(field result "$out") != ok ]]; then
        printf '%s install did not report success:\n%s\n' "$kind" "$out" >&2
        exit 1
    fi
    if [[ $(field counter_check "$out") != "$calibration" ]]; then
        echo "minstret counted $(field counter_check "$out") instructions for a $calibration-instruction loop: not an exact count (is -icount on?)" >&2
        exit 1
    fi
done

for case in "bad-signature:signature" "bad-payload:image refused|zstd decode failed" \
    "wrong-base:not the delta's base" \
    "bad-stream:difference stream refused: an add run reads past the end of the base"; do
    name=${case%%:*}
    expected=${case#*:}
    status=0
    out=$(run "$name") || status=$?
    if [[ $status != 1 ]] || ! grep -Eq "^result=FAIL .*($expected)" <<<"$out"; then
        printf 'tampered input %s was not refused as expected (exit %s, wanted 1 and /%s/):\n%s\n' \
            "$name" "$status" "$expected" "$out" >&2
        failed=1
    else
        echo "tampered input $name refused: $(field result "$out" | sed 's/^FAIL //')"
    fi
done

echo
echo "Install cost on RV32IMC: qemu $(qemu-system-riscv32 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') virt, -icount shift=0"
echo "(minstret = retired instructions, exact: $calibration for the calibration loop)"
echo "input: $source_label"
FULL=${report[full]} DELTA=${report[delta]} DIFF=${report[difference]} awk '
    function get(text, key,    n, i, lines, kv) {
        n = split(text, lines, "\n")
        for (i = 1; i <= n; i++) if (index(lines[i], key "=") == 1) return substr(lines[i], length(key) + 2)
        return 0
    }
    function group(x,    s, neg) {
        s = sprintf("%d", x); neg = ""
        while (length(s) > 3) { neg = "," substr(s, length(s) - 2) neg; s = substr(s, 1, length(s) - 3) }
        return s neg
    }
    function row(label, key) {
        printf "%-34s %14s %8.1f %14s %8.1f %14s %8.1f\n", label, group(get(F, key)), get(F, key) / fi, \
            group(get(D, key)), get(D, key) / di, group(get(X, key)), get(X, key) / xi
    }
    # A row of byte counts (no per-byte column).
    function count(label, key) {
        printf "%-34s %14s %8s %14s %8s %14s\n", label, group(get(F, key)), "", group(get(D, key)), "", group(get(X, key))
    }
    function calls(label, c, b) {
        printf "%-34s %14s %8s %14s %8s %14s %8s\n", label, group(get(F, c)) " /", group(get(F, b)), \
            group(get(D, c)) " /", group(get(D, b)), group(get(X, c)) " /", group(get(X, b))
    }
    BEGIN {
        F = ENVIRON["FULL"]; D = ENVIRON["DELTA"]; X = ENVIRON["DIFF"]
        fi = get(F, "installed_bytes"); di = get(D, "installed_bytes"); xi = get(X, "installed_bytes")
        printf "%-34s %14s %8s %14s %8s %14s %8s\n", "", "full image", "/byte", "delta (enc 2)", "/byte", "delta (enc 3)", "/byte"
        count("installed bytes", "installed_bytes")
        count("bytes fed to the decoder", "fed_bytes")
        count("bytes decoded (enc 3: the stream)", "decoded_bytes")
        row("instructions, whole install", "instret_total")
        row("  header (SHA-256 + Ed25519)", "instret_header")
        row("  payload SHA-256 (streaming)", "instret_payload_sha")
        row("  zstd decode incl. flash I/O", "instret_decode")
        row("    of which flash erase+program", "instret_flash_write")
        row("    of which flash history reads", "instret_flash_read")
        calls("      history reads: calls / bytes", "flash_read_calls", "flash_read_bytes")
        row("  patch pass (enc 3 pass 2)", "instret_patch")
        row("    of which flash erase+program", "instret_patch_flash_write")
        row("    of which flash reads", "instret_patch_flash_read")
        calls("      reads: calls / bytes", "patch_flash_read_calls", "patch_flash_read_bytes")
        row("  read-back SHA-256 (delta: +base)", "instret_readback")
        count("stack high-water (B)", "stack_high_water")
        printf "%-34s %14s\n", "state: ImageVerifier (B)", group(get(F, "state_verifier"))
        printf "%-34s %14s\n", "state: Decoder<4096, 8192> (B)", group(get(F, "state_decoder"))
        printf "%-34s %14s\n", "download chunk (B)", group(get(F, "state_chunk"))
        count("heap peak (B)", "heap_peak")
        printf "%-34s %14.2f %8s %14.2f %8s %14.2f\n", "ESTIMATE: C3 s at 160 MHz, 1 IPC", get(F, "instret_total") / 160e6, "", \
            get(D, "instret_total") / 160e6, "", get(X, "instret_total") / 160e6
        printf "(estimate = instructions / 160e6: an upper bound on speed; flash and cache timing are not modelled)\n"
    }' </dev/null

for kind in full delta difference; do
    out=${report[$kind]}
    ram=$(($(field stack_high_water "$out") + $(field state_chunk "$out")))
    if ((ram > budget)); then
        echo "$kind: stack high-water + download chunk = $ram B exceeds the $budget B budget" >&2
        failed=1
    else
        echo "$kind: stack high-water + download chunk = $ram B, within the $budget B budget"
    fi
done
exit "$failed"
