#!/usr/bin/env bash
# Installs the servers the publish tests start: nginx (Debian) and s3s-fs (crates.io).
# Idempotent: does nothing for what is already installed.
set -euo pipefail

if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    echo "installing nginx"
    sudo_cmd=""
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nginx >/dev/null
fi

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v s3s-fs >/dev/null 2>&1 && [[ ! -x "$cargo_bin/s3s-fs" ]]; then
    echo "installing s3s-fs (takes a few minutes)"
    cargo install s3s-fs@0.14.1 --features binary --locked
fi
