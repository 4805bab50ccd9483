#!/usr/bin/env bash
# Builds the real ESP32-C3 firmware for its target (riscv32imc-unknown-none-elf) with the
# WiFi stack and update agent compiled in, checks it, and prints its flash and RAM size.
# The ELF lands in firmware/esp32c3/target/riscv32imc-unknown-none-elf/release/ota-esp32c3
# and the test suite packages it with `ota-sign package`.
#
# It trusts the published insecure test key (see firmware/esp32c3/README.md): fine for a
# build that never leaves CI, never for a device.
set -euo pipefail
cd "$(dirname "$0")/../firmware/esp32c3"

rustup target list --installed | grep -qx riscv32imc-unknown-none-elf ||
    rustup target add riscv32imc-unknown-none-elf
rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools || true

export WIFI_SSID=ota-sign-ci WIFI_PASSWORD=ci-password-123 OTA_BASE_URL=http://127.0.0.1:8080/fleet
cargo fmt --check
cargo build --release --locked
cargo clippy --release --locked -- -D warnings
./size.sh || true
