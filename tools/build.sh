#!/usr/bin/env bash
# Configures (once) and builds lockshift into ./build with ccache. Usage: tools/build.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.cache/ccache}"
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
jobs="${LOCKSHIFT_JOBS:-2}"
if [ $# -gt 0 ]; then
  for t in "$@"; do cmake --build build -j"$jobs" --target "$t"; done
else
  cmake --build build -j"$jobs"
fi
