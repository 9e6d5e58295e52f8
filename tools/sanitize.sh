#!/usr/bin/env bash
# Builds lockshift and its tests with sanitizers and runs every test with them. The integration
# tests start the sanitized lockshift, so its reports count too: every process writes them under
# BUILD/sanitizer-reports instead of stderr (a test reading a process's log would otherwise see
# them only by chance), and the script fails when any report was written or any test failed.
#   tools/sanitize.sh [ctest args]           AddressSanitizer (leaks included) and UBSan, in
#                                            ./build-asan
#   tools/sanitize.sh --thread [ctest args]  ThreadSanitizer, in ./build-tsan (no suppressions:
#                                            every report counts)
# Not part of tools/test.sh: a cold build takes about 20 minutes on two cores and the tests run
# two to five times as long as in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--thread" ]; then
  shift
  dir=build-tsan
  # ThreadSanitizer does not model std::atomic_thread_fence. Asio's reference counts use one
  # (ref_count_down: a release decrement, then an acquire fence before the delete), so the
  # delete of a strand's shared executor looked like a race with another thread's decrement
  # (RunParallel.GroupsOnAManyThreadedContextAllComplete, about 2 runs in 100). Without
  # std::atomic, Asio counts with Boost's atomic_count, an acq_rel decrement that it does model.
  # In this build only; every translation unit gets it.
  flags="-fsanitize=thread"
  defines="-DBOOST_ASIO_DISABLE_STD_ATOMIC"
else
  dir=build-asan
  flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
  defines=""
fi
tools/setup.sh  # cmake, before the configure below
# Configured every time, so a change of the flags above reaches an existing build directory
# (unchanged flags rebuild nothing).
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  "-DCMAKE_CXX_FLAGS=-O1 -g -fno-omit-frame-pointer $flags $defines" "-DCMAKE_EXE_LINKER_FLAGS=$flags" >/dev/null
LOCKSHIFT_BUILD_DIR="$dir" tools/build.sh
reports="$PWD/$dir/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
export TSAN_OPTIONS="log_path=$reports/tsan:second_deadlock_stack=1"
status=0
(cd "$dir" && ctest --output-on-failure -j2 "$@") || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  ls "$reports" >&2
  head -50 "$reports"/* >&2
  status=1
fi
exit "$status"
