#!/usr/bin/env bash
# Installs everything lockshift needs to build, test and benchmark, from Debian 12 packages only.
# Safe to run repeatedly: it installs only what is missing. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  libboost1.81-all-dev libboost-json1.81-dev
  liblmdb-dev libtomlplusplus-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev librapidcheck-dev
  redis-server redis-tools lmdb-utils
  chromium  # headless, for the status page test (tests/integration/status_page_test.cc)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
