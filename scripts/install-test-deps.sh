#!/usr/bin/env bash
# Installs what the tests need beyond Rust: nginx, OpenSSL, a C compiler, Chromium and qemu
# (Debian), s3s-fs (crates.io) and Python's `cryptography` (PyPI, else Debian).
# Idempotent: does nothing for what is already installed.
set -euo pipefail

sudo_cmd=""
if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
apt_updated=0
apt_install() {
    if [[ $apt_updated == 0 ]]; then
        $sudo_cmd apt-get update -qq
        apt_updated=1
    fi
    echo "installing $* (apt)"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    apt_install nginx
fi
# `ota-sign fleet status --html`: the report is rendered in real headless Chromium
# (cli/tests/fleet_cli.rs).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    apt_install chromium
fi
# Key interoperability tests and the C key export.
command -v openssl >/dev/null 2>&1 || apt_install openssl
command -v cc >/dev/null 2>&1 || apt_install gcc
# C firmware: cli/tests/c_firmware_cli.rs and scripts/capi-riscv.sh cross-compile C for
# the ESP32-C3 (RV32IMC); capi/tests/c_vectors.rs needs gcc's AddressSanitizer (libasan,
# part of Debian's gcc).
command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || apt_install gcc-riscv64-unknown-elf
# scripts/install-cost.sh runs the RV32IMC install pipeline under qemu's `virt` machine.
command -v qemu-system-riscv32 >/dev/null 2>&1 || apt_install qemu-system-misc
# capi/tests/c_vectors.rs also runs the C vector program under valgrind, which checks the
# Rust side of the C API too.
command -v valgrind >/dev/null 2>&1 || apt_install valgrind

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v s3s-fs >/dev/null 2>&1 && [[ ! -x "$cargo_bin/s3s-fs" ]]; then
    echo "installing s3s-fs (takes a few minutes)"
    cargo install s3s-fs@0.14.1 --features binary --locked
fi

# The independent Python verifier of the format's test vectors. A bare Debian python3 has
# no pip and refuses system-wide pip installs (PEP 668): Debian's package is the fallback.
if ! python3 -c "import cryptography" 2>/dev/null; then
    python3 -m pip install --quiet cryptography 2>/dev/null || apt_install python3-cryptography
    python3 -c "import cryptography"
fi

# espsecure (the esptool package, PyPI): the independent checker of Secure Boot V2
# signatures in cli/tests/secure_boot_cli.rs. Debian's python3 refuses system-wide pip
# installs (PEP 668): then --break-system-packages, then a venv under target/ (the tests
# look there too).
if ! command -v espsecure >/dev/null 2>&1 && ! python3 -c "import espsecure" 2>/dev/null \
    && [[ ! -x target/espsecure-venv/bin/espsecure ]]; then
    echo "installing esptool (espsecure) from PyPI"
    python3 -m pip install --quiet esptool 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages esptool 2>/dev/null \
        || {
            python3 -m venv target/espsecure-venv 2>/dev/null || {
                apt_install python3-venv
                python3 -m venv target/espsecure-venv
            }
            target/espsecure-venv/bin/pip install --quiet esptool
        }
fi

# cargo-fuzz: scripts/fuzz-smoke.sh builds every fuzz target and runs each on its seeds.
if ! command -v cargo-fuzz >/dev/null 2>&1 && [[ ! -x "$cargo_bin/cargo-fuzz" ]]; then
    echo "installing cargo-fuzz (takes a minute or two)"
    cargo install cargo-fuzz@0.13.2 --locked
fi
