#!/usr/bin/env bash
# Installs the Debian packages tlsplice needs to build and test, if any is missing.
# Usage: scripts/setup.sh [EXTRA-PACKAGE...]   (as root on Debian 12)
set -euo pipefail

pkgs=(build-essential meson ninja-build pkg-config libssl-dev libevent-dev libinih-dev
      libcriterion-dev openssl ca-certificates curl
      clang libclang-rt-14-dev clang-format "$@") # clang and libFuzzer: scripts/fuzz.sh; clang-format: test.sh
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
