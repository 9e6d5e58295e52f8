#!/usr/bin/env bash
# Configures (once) and builds lockshift into ./build with ccache. Usage: tools/build.sh [target...]
# LOCKSHIFT_BUILD_DIR names another build directory, configured by its caller beforehand
# (tools/sanitize.sh); LOCKSHIFT_JOBS the parallel jobs (2).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# ccache's own default directory (~/.cache/ccache) outlives any one checkout, so a fresh clone
# on the same machine (as CI makes) recompiles only what changed.
# BASEDIR and NOHASHDIR make hits independent of where the checkout lives.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
export CCACHE_BASEDIR="$PWD"
export CCACHE_NOHASHDIR=1
dir="${LOCKSHIFT_BUILD_DIR:-build}"
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
jobs="${LOCKSHIFT_JOBS:-2}"
if [ $# -gt 0 ]; then
  for t in "$@"; do cmake --build "$dir" -j"$jobs" --target "$t"; done
else
  cmake --build "$dir" -j"$jobs"
fi
