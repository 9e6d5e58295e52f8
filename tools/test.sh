#!/usr/bin/env bash
# Builds lockshift and runs every test (unit, property, integration). Usage: tools/test.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
cd build
ctest --output-on-failure -j2 --timeout 600 "$@"
