#!/bin/sh
# Flash and static RAM of the firmware ELF, from its section table.
#   flash  = every allocated section with contents (PROGBITS): what the app image carries
#   iram   = code copied to RAM at boot (.trap, .rwtext*), counted in flash too
#   static = .data* + .bss (the application heap is a static inside .bss)
# Usage: ./size.sh [ELF]   (default: the release build)
set -eu
here=$(dirname "$0")
elf=${1:-$here/target/riscv32imc-unknown-none-elf/release/ota-esp32c3}
readobj=$(ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-readobj 2>/dev/null | head -n1)
[ -n "$readobj" ] || readobj=$(command -v llvm-readobj || command -v llvm-readobj-14) || {
    echo "size.sh: llvm-readobj not found; run: rustup component add llvm-tools" >&2
    exit 1
}
"$readobj" --elf-output-style=GNU -S "$elf" | sed -n 's/^ *\[ *[0-9]*\] *//p' | awk '
    # Name Type Address Off Size ES Flg ...: sizes are hex
    function hex(s,  i, n, c) { n = 0; s = tolower(s)
        for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; n = n * 16 + c }
        return n }
    $2 == "PROGBITS" && $7 ~ /A/ { flash += hex($5) }
    $1 ~ /^\.(trap|rwtext)/ { iram += hex($5) }
    $1 ~ /^\.(data|bss)/ { ram += hex($5) }
    END {
        printf "flash (loadable sections): %d bytes (%.1f KiB)\n", flash, flash / 1024
        printf "  of which IRAM code:      %d bytes (%.1f KiB)\n", iram, iram / 1024
        printf "static RAM (.data+.bss):   %d bytes (%.1f KiB)\n", ram, ram / 1024
    }'
