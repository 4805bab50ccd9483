#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then checks
# formatting, lints, the no_std build, the real ESP32-C3 firmware build and every test.
#
#   OTA_SKIP_FIRMWARE=1   skip the riscv32 firmware build (local quick runs only)
#   OTA_QUICK=1           skip the exhaustive power-cut sweep (local quick runs only)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A one-shot build gains nothing from incremental caches, which double the size
# of the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "disk space"
df -h . | tail -n 1
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if (( free_kib < 4 * 1024 * 1024 )); then
    echo "warning: under 4 GiB free here; the build and tests need about 4 GiB" >&2
fi

step "installing test dependencies"
bash scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "ota-format builds without std and without an allocator"
cargo build -p ota-format --no-default-features --locked

step "C API (ota-format-c) for riscv32imc-unknown-none-elf, linked into a C firmware"
bash scripts/capi-riscv.sh

step "ota-agent builds without its tls feature"
cargo clippy -p ota-agent --locked -- -D warnings

if [[ -d firmware/esp32c3 && "${OTA_SKIP_FIRMWARE:-0}" != 1 ]]; then
    step "real ESP32-C3 firmware (riscv32imc-unknown-none-elf)"
    bash scripts/build-firmware.sh
    # The end-to-end tests must then package this ELF: a missing one is a failure.
    export OTA_ESP32C3_ELF="$PWD/firmware/esp32c3/target/riscv32imc-unknown-none-elf/release/ota-esp32c3"
    export OTA_REQUIRE_ESP32C3_ELF=1
fi

# Beside the C API's RISC-V build, but after the firmware's: it measures the real firmware
# when that was built (a stand-in otherwise, and only when OTA_SKIP_FIRMWARE=1).
step "install cost on RV32IMC under qemu (verify + zstd + flash writes, full image and delta)"
bash scripts/install-cost.sh

step "cargo test --workspace"
cargo test --workspace --locked

step "fuzz targets: build each, run each from its seeds"
bash scripts/fuzz-smoke.sh
