#!/usr/bin/env bash
# Builds the C API of ota-format (capi/) as a static library for the ESP32-C3
# (riscv32imc-unknown-none-elf), links it with riscv64-unknown-elf-gcc -march=rv32imc
# -mabi=ilp32 into a C program that calls every function (cli/tests/c_firmware/main.c
# with -DOTA_WITH_VERIFIER, laid out like an ESP32-C3 app), and prints the code and data
# size the verifier adds. Proves the library links with the C toolchain's ABI; nothing
# runs. The host library is built and tested by `cargo test` (capi/tests/c_vectors.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

target=riscv32imc-unknown-none-elf
# Built for flash size, as firmware/esp32c3 is: sha2's rolled-up rounds (SHA-512 for
# Ed25519 unrolls to ~50 KiB) and opt-level "s". Measured with this script: the verifier
# adds ~62 KiB of code this way, ~135 KiB with the plain release profile. (The "with"
# program also keeps the 276-byte key descriptor, which it references.)
export CARGO_TARGET_RISCV32IMC_UNKNOWN_NONE_ELF_RUSTFLAGS='--cfg sha2_backend_soft="compact"'
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
cargo build -p ota-format-c --target "$target" --release --locked
cargo clippy -p ota-format-c --target "$target" --release --locked -- -D warnings
lib="target/$target/release/libota_format_c.a"

command -v riscv64-unknown-elf-gcc >/dev/null || {
    echo "riscv64-unknown-elf-gcc missing: run scripts/install-test-deps.sh" >&2
    exit 1
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src=cli/tests/c_firmware
cat > "$out/trusted_keys.c" <<'C'
#include <stdint.h>
/* A well-formed descriptor shape for linking only; its key is all zero. */
const uint8_t ota_trusted_keys[276] = {'O','T','A','K','E','Y','S','!',
    0x9c, 0x5e, 0x12, 0xd0, 0x7b, 0x33, 0xa1, 0x6e, 1, 1};
C
cflags=(-march=rv32imc -mabi=ilp32 -Os -ffreestanding -ffunction-sections -fdata-sections
    -Wall -Wextra -Werror -Icapi/include -Iexamples/esp-idf/stubs)
ldflags=(-nostdlib -Wl,--gc-sections -Wl,-u,esp_app_desc -T "$src/esp32c3_app.ld")
riscv64-unknown-elf-gcc "${cflags[@]}" "${ldflags[@]}" "$src/main.c" "$out/trusted_keys.c" \
    -o "$out/without.elf"
riscv64-unknown-elf-gcc "${cflags[@]}" -DOTA_WITH_VERIFIER "${ldflags[@]}" "$src/main.c" \
    "$out/trusted_keys.c" "$lib" -lgcc -o "$out/with.elf"
echo "size of the C firmware without and with the verifier (text = flash code + rodata):"
riscv64-unknown-elf-size "$out/without.elf" "$out/with.elf"
