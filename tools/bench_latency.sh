#!/usr/bin/env bash
# The latency lockshift adds at a load both it and redis-server sustain: the Atlantis
# TryLock/Unlock mix (tools/atlantis_loadgen, 50 clients) paced at fixed rates, straight at
# redis-server and through lockshift in legacy-only in front of it, alternating within each run.
#
# A closed-loop benchmark at 50 clients (redis-benchmark -c 50) measures latency at saturation:
# on two cores shared with the load generator, its p99 mostly says how far the proxy's CPU cost
# lowers the saturation point. Paced at a rate below both saturation points, the difference of
# the two p99s is the time the extra hop adds to a command. Latency counts from when the
# schedule meant to send a command, so a target that falls behind its rate is charged for it
# (commands/s then comes out below the rate).
# Usage: tools/bench_latency.sh [RUNS [RATE...]]   (default 3 runs at 5000 10000 20000 30000
# commands/s). Prints a Markdown table of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
shift || true
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(5000 10000 20000 30000)
SECONDS_PER_RUN="${SECONDS_PER_RUN:-6}"

source tools/bench_lib.sh
bench_init lockshift atlantis_loadgen
legacy_lockshift

# run TARGET RATE: "commands_per_s p50_us p99_us" of one paced run.
run() {
  local port=$legacy
  [ "$1" = lockshift ] && port=$ls_port
  build/atlantis_loadgen --port "$port" --clients 50 --seconds "$SECONDS_PER_RUN" --keys 1000 --rate "$2" |
    sed -E 's/.*commands_per_s=([0-9]+) p50_us=([0-9]+) p99_us=([0-9]+)/\1 \2 \3/'
}
collect_results "${RATES[*]}" "direct lockshift"
col() { result_median "$@"; }
echo "| rate (commands/s) | direct commands/s | direct p50 / p99 µs | lockshift commands/s | lockshift p50 / p99 µs | added p50 / p99 ms |"
echo "|---|---|---|---|---|---|"
for rate in "${RATES[@]}"; do
  dc=$(col direct "$rate" 1); dp50=$(col direct "$rate" 2); dp99=$(col direct "$rate" 3)
  lc=$(col lockshift "$rate" 1); lp50=$(col lockshift "$rate" 2); lp99=$(col lockshift "$rate" 3)
  awk -v r="$rate" -v dc="$dc" -v d5="$dp50" -v d9="$dp99" -v lc="$lc" -v l5="$lp50" -v l9="$lp99" 'BEGIN {
    printf "| %s | %s | %s / %s | %s | %s / %s | %.3f / %.3f |\n", r, dc, d5, d9, lc, l5, l9,
      (l5 - d5) / 1000, (l9 - d9) / 1000 }'
done
echo
echo "Medians of $RUNS runs of ${SECONDS_PER_RUN} s, 50 thread clients, Atlantis mix over 1000 keys."
