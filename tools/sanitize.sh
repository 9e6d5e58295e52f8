#!/usr/bin/env bash
# Builds lockshift and its tests with AddressSanitizer and UndefinedBehaviorSanitizer into
# ./build-asan and runs every test there. The integration tests start the sanitized lockshift, so
# its reports count too: every process writes them under build-asan/sanitizer-reports instead of
# stderr (a test reading a process's log would otherwise see them only by chance), and the
# script fails when any report was written or any test failed.
# Not part of tools/test.sh: a cold build takes about 20 minutes on two cores and the tests run
# about twice as long as in ./build. Usage: tools/sanitize.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh  # cmake, before the configure below
if [ ! -f build-asan/CMakeCache.txt ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    "-DCMAKE_CXX_FLAGS=-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
fi
LOCKSHIFT_BUILD_DIR=build-asan tools/build.sh
reports="$PWD/build-asan/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
status=0
(cd build-asan && ctest --output-on-failure -j2 "$@") || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  ls "$reports" >&2
  head -50 "$reports"/* >&2
  status=1
fi
exit "$status"
