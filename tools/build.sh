#!/usr/bin/env bash
# Configures (once) and builds lockshift into ./build with ccache. Usage: tools/build.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# ccache's own default directory (~/.cache/ccache) outlives any one checkout, so a fresh clone
# on the same machine (as CI makes) recompiles only what changed.
# BASEDIR and NOHASHDIR make hits independent of where the checkout lives.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
export CCACHE_BASEDIR="$PWD"
export CCACHE_NOHASHDIR=1
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
jobs="${LOCKSHIFT_JOBS:-2}"
if [ $# -gt 0 ]; then
  for t in "$@"; do cmake --build build -j"$jobs" --target "$t"; done
else
  cmake --build build -j"$jobs"
fi
