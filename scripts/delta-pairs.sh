#!/usr/bin/env bash
# Bytes on the wire (issue 13): builds the real ESP32-C3 firmware in the variants of the
# two delta pairs, turns each ELF into the ESP-IDF app image as `ota-sign package` does,
# and measures deltas and full images against the anchors. Prints markdown tables; the
# numbers in docs/BENCHMARKS.md ("Bytes on the wire") come from this script.
#
#   scripts/delta-pairs.sh [OUT_DIR]        (default: target/delta-pairs)
#
# The pairs differ only in the build environment of scripts/build-firmware.sh:
#   small:   WIFI_SSID=ota-sign-ci  ->  WIFI_SSID=ota-sign-ci-2     (one string constant)
#   feature: OTA_NTP_SERVER=off     ->  default (pool.ntp.org)      (the SNTP client, ~5 KB)
# so there are three builds: `base` (build-firmware.sh's environment), `ssid2` and `ntpoff`.
# ELFs, app images and .ota files are kept in OUT_DIR and reused when present: delete a
# file to rebuild it. Slow: each firmware variant relinks the firmware with fat LTO and
# the anchors run bsdiff over ~800 KB (timings in docs/BENCHMARKS.md); not part of
# scripts/test.sh.
#
# Needs: the riscv32imc target (rustup), python3 (a venv with detools is made in OUT_DIR),
# zstd, gzip, xz, openssl (to write the published test key's PEM).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/delta-pairs}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# A fixed build time (build.rs embeds it), so a variant differs only by what its pair varies.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1764979200}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
fw=$root/firmware/esp32c3
elf_built=$fw/target/riscv32imc-unknown-none-elf/release/ota-esp32c3

log() { echo "delta-pairs: $*" >&2; }

# build_variant NAME [VAR=VALUE...]: the firmware built with build-firmware.sh's
# environment plus the given variables, copied to OUT_DIR/NAME.elf.
build_variant() {
    local name=$1
    shift
    [[ -s $out/$name.elf ]] && return
    log "building firmware variant $name ($*)"
    (cd "$fw" && env -u OTA_NTP_SERVER -u OTA_TRUSTED_KEYS \
        WIFI_SSID=ota-sign-ci WIFI_PASSWORD=ci-password-123 \
        OTA_BASE_URL=http://127.0.0.1:8080/fleet "$@" \
        cargo build --release --locked --quiet)
    cp "$elf_built" "$out/$name.elf"
}

build_variant base
build_variant ssid2 WIFI_SSID=ota-sign-ci-2
build_variant ntpoff OTA_NTP_SERVER=off

# ota-sign, and the published insecure test key the default build trusts
# (firmware/esp32c3/README.md): its private half is public, hence --allow-test-keys.
(cd "$root" && cargo build -p ota-sign --locked --quiet)
ota_sign=$root/target/debug/ota-sign
key=$out/test-key.pem
if [[ ! -s $key ]]; then
    seed=$(printf '%s' "ota-sign INSECURE test key; never use in production" | sha256sum | cut -c1-64)
    # PKCS#8 of an Ed25519 seed: a fixed 16-byte prefix, then the seed.
    printf '302e020100300506032b657004220420%s' "$seed" | xxd -r -p |
        openssl pkey -inform DER -out "$key"
fi

# NAME.ota: the default package (method 2: zstd 19, a window covering the image, 8 KiB blocks); NAME.bin: the app image a device
# installs, from an uncompressed package through `ota-sign extract` (espflash's ELF
# conversion, as every .ota carries it).
for name in base ssid2 ntpoff; do
    if [[ ! -s $out/$name.ota ]]; then
        "$ota_sign" --allow-test-keys -q package --key "$key" --device-type ota-esp32c3 \
            --chip esp32c3 --elf "$out/$name.elf" -o "$out/$name.ota" --force
    fi
    if [[ ! -s $out/$name.bin ]]; then
        "$ota_sign" --allow-test-keys -q package --key "$key" --device-type ota-esp32c3 \
            --chip esp32c3 --elf "$out/$name.elf" --no-compress -o "$out/$name.raw.ota" --force
        "$ota_sign" --allow-test-keys -q extract --pubkey "$key" --device-type ota-esp32c3 \
            "$out/$name.raw.ota" -o "$out/$name.bin" --force
    fi
done

venv=$out/detools-venv
if [[ ! -x $venv/bin/detools ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q detools==0.53.0
fi
(cd "$root" && cargo build -p ota-zstd --release --example wire --locked --quiet)
wire=$root/target/release/examples/wire

size() { stat -c %s "$1"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f %%", 100 * a / b }'; }
num() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

# ours_delta FROM.bin TO.bin: the raw delta payload under several encoder settings, one
# "setting<TAB>bytes<TAB>device|reference<TAB>time" line each, `l19` first
# (firmware/zstd-flash/examples/wire.rs): what the settings cost, beside the real
# `ota-sign delta` output measured in `pair`.
ours_delta() { "$wire" delta "$1" "$2"; }

declare -A rows
pair() {
    local label=$1 from=$out/$2.bin to=$out/$3.bin tag=$2-$3
    local full
    full=$(size "$out/$3.ota")
    [[ -s $out/$tag.heatshrink ]] ||
        "$venv/bin/detools" create_patch -c heatshrink "$from" "$to" "$out/$tag.heatshrink" >/dev/null
    [[ -s $out/$tag.lzma ]] ||
        "$venv/bin/detools" create_patch -c lzma "$from" "$to" "$out/$tag.lzma" >/dev/null
    [[ -s $out/$tag.dzstd ]] ||
        "$venv/bin/detools" create_patch -c zstd "$from" "$to" "$out/$tag.dzstd" >/dev/null
    [[ -s $out/$tag.patch-from.zst ]] ||
        zstd -q -19 --patch-from="$from" "$to" -o "$out/$tag.patch-from.zst"
    [[ -s $out/$tag.ours.txt ]] || ours_delta "$from" "$to" >"$out/$tag.ours.txt"
    # What ota-sign ships: the signed .otad (delta header, the target's header, payload),
    # in each encoding; `auto` (the default) keeps the smaller.
    local encoding
    for encoding in patch-from difference auto; do
        [[ -s $out/$tag.$encoding.otad ]] ||
            "$ota_sign" --allow-test-keys -q delta --key "$key" --from "$out/$2.ota" \
                --to "$out/$3.ota" -o "$out/$tag.$encoding.otad" --force --encoding "$encoding"
    done
    local hs lz dz pf ours otad otad_pf otad_diff best best_name
    otad=$(size "$out/$tag.auto.otad")
    otad_pf=$(size "$out/$tag.patch-from.otad")
    otad_diff=$(size "$out/$tag.difference.otad")
    hs=$(size "$out/$tag.heatshrink")
    lz=$(size "$out/$tag.lzma")
    dz=$(size "$out/$tag.dzstd")
    pf=$(size "$out/$tag.patch-from.zst")
    ours=$(awk -F'\t' '$1 == "l19" { print $2 }' "$out/$tag.ours.txt")
    # The smallest frame the device decodes (`reference` settings have larger blocks).
    read -r best_name best < <(awk -F'\t' '$3 == "device" { print $1, $2 }' "$out/$tag.ours.txt" | sort -s -k2,2n | head -n1)
    cell() { echo "$(num "$1") B ($(pct "$1" "$full"))"; }
    rows[$label]="| $label | $(cell "$hs") | $(cell "$pf") | $(cell "$lz") | **$(cell "$otad")** | $(cell "$otad_diff") | $(cell "$otad_pf") | $(cell "$ours") | $(cell "$best") \`$best_name\` | $(cell "$dz") |"
    {
        echo "settings for $label (full .ota $(num "$full") B):"
        sed 's/^/  /' "$out/$tag.ours.txt"
    } >&2
}
pair "small: WIFI_SSID=ota-sign-ci -> ota-sign-ci-2" base ssid2
pair "feature: OTA_NTP_SERVER=off -> default" ntpoff base

echo
echo "Deltas (percentages of the target's default .ota; \`ota-sign delta\` is the whole signed file, the payload columns are raw zstd):"
echo
echo "| pair | detools heatshrink | \`zstd -19 --patch-from\` | detools lzma | ours: \`ota-sign delta\` .otad (default, auto) | .otad, \`--encoding difference\` | .otad, \`--encoding patch-from\` | patch-from payload, zstd 19, blocks ≤ 8 KiB | patch-from payload, best setting | detools zstd |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for label in "small: WIFI_SSID=ota-sign-ci -> ota-sign-ci-2" "feature: OTA_NTP_SERVER=off -> default"; do
    echo "${rows[$label]}"
done

# Full images: the base variant (build-firmware.sh's environment).
app=$out/base.bin
appsize=$(size "$app")
[[ -s $out/base.full.txt ]] || "$wire" full "$app" >"$out/base.full.txt"
full_of() { awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$out/base.full.txt"; }
gz=$(gzip -9 -c "$app" | wc -c)
xz=$(xz -9e -c "$app" | wc -c)
echo
echo "Full image (app image $(num "$appsize") B = 100 %):"
echo
echo "| encoding | bytes | of the app image |"
echo "|---|---:|---:|"
row() { echo "| $1 | $(num "$2") B | $(pct "$2" "$appsize") |"; }
row "default \`.ota\` (method 2, with its header)" "$(size "$out/base.ota")"
[[ -s $out/base.gen1.ota ]] ||
    "$ota_sign" --allow-test-keys -q package --key "$key" --device-type ota-esp32c3 \
        --chip esp32c3 --elf "$out/base.elf" --agent-generation 1 -o "$out/base.gen1.ota" --force
row "generation-1 \`.ota\` (method 1, window 2^12, with its header)" "$(size "$out/base.gen1.ota")"
row "zstd 19, window 2^12 (payload)" "$(full_of w12)"
row "method 2: zstd 19, window 2^23, blocks ≤ 8 KiB" "$(full_of w23-b8k)"
row "method 2: zstd 19, window 2^25, blocks ≤ 8 KiB" "$(full_of w25-b8k)"
row "(reference: zstd 19, window 2^23, 128 KiB blocks)" "$(full_of w23-b128k)"
row "\`gzip -9\`" "$gz"
row "\`xz -9e\` ($(xz --version | head -n1 | awk '{ print $NF }'))" "$xz"
