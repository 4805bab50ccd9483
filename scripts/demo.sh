#!/usr/bin/env bash
# The whole ota-sign story on this machine, no hardware and no cloud account:
# a throwaway key, firmware that trusts it, a signed release on a local static host
# (nginx if installed, else a small built-in server), a fleet of simulated ESP32-C3
# devices updating to v2, and a broken v3 that every device rolls back from.
#
#   ./scripts/demo.sh                    # 20 devices, synthesized ESP32-C3 firmware
#   ./scripts/demo.sh --devices 50       # a bigger fleet
#   ./scripts/demo.sh --real-firmware    # build firmware/esp32c3 with the demo key (slow once)
#   ./scripts/demo.sh bench              # the fleet benchmark (100 and 1000 devices, needs nginx)
#   ./scripts/demo.sh --help
#
# Exits non-zero if the fleet does not converge.
set -euo pipefail
cd "$(dirname "$0")/.."

# ota-demo runs the real ota-sign binary; cargo puts both in the same directory.
cargo build --release --quiet -p ota-sign
exec cargo run --release --quiet -p ota-demo -- "$@"
