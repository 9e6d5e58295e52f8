#!/usr/bin/env bash
# Builds lockshift and runs it on a config (default: configs/lockshift.toml, the embedded default).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh lockshift
exec build/lockshift --config "${1:-configs/lockshift.toml}"
