#!/usr/bin/env bash
# Installs the Debian packages herd builds and tests with, only those that are missing,
# so that a prepared machine pays nothing and a new one needs no manual step.
set -euo pipefail

pkgs=(
  gcc make cmake pkg-config
  libopendht-c-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
  libsqlite3-dev libsodium-dev libcmocka-dev
  curl jq iproute2 procps python3 nodejs npm
  clang-14 libclang-rt-14-dev # make fuzz: libFuzzer, ASan, UBSan
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
