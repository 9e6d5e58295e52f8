#!/usr/bin/env bash
# How fast the repair journal a rollback leaves drains, and what the drain costs the clients.
# lockshift in hybrid 50 over two redis-servers; a rollback is raised and the Atlantis mix
# (tools/atlantis_loadgen, 50 clients) runs FILL seconds over 200 000 lock keys, so every key it
# writes is journaled for enhanced; then the rollback is cleared and the journal drains, once
# with no load and once while the mix runs on 1000 keys until the journal is empty (in 5 s
# pieces). Per run: the entries, the time to drain them, keys/s, and the clients' commands/s
# during the drain (the median of the pieces).
# Usage: tools/bench_drain.sh [RUNS]   (default 3; FILL=15; LOCKSHIFT=another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
FILL="${FILL:-15}"

source tools/bench_lib.sh
need_number RUNS "$RUNS"
need_number FILL "$FILL"
bench_init lockshift lockshiftctl atlantis_loadgen

# drain LOAD: one run on a fresh lockshift, state directory and redis-servers (stopped after);
# prints "entries seconds keys/s clients_commands/s" (the last "-" without load).
drain() {
  rm -rf "$work/state-lockshift"
  legacy_lockshift
  local d0 d t0 t1 lg="" clients="-"
  ctl phase hybrid --split 50 >/dev/null
  ctl rollback --reason bench_drain >/dev/null
  build/atlantis_loadgen --port "$ls_port" --clients 50 --seconds "$FILL" --keys 200000 --events 0 >/dev/null
  d0=$(status_number depth)
  rm -f "$work/stop"
  if [ "$1" = 1 ]; then
    while [ ! -e "$work/stop" ]; do
      build/atlantis_loadgen --port "$ls_port" --clients 50 --seconds 5 --keys 1000 --events 0 |
        grep -o 'commands_per_s=[0-9]*' | cut -d= -f2
    done >"$work/load" &
    lg=$!
  fi
  t0=$(date +%s.%N)
  ctl rollback --clear >/dev/null
  for _ in $(seq 1 1200); do  # 4 minutes at most
    d=$(status_number depth)
    [ "$d" = 0 ] && break
    sleep 0.2
  done
  t1=$(date +%s.%N)
  if [ -n "$lg" ]; then
    touch "$work/stop"
    wait "$lg"
    clients=$(median <"$work/load")
  fi
  [ "$d" = 0 ] || { echo "the journal did not drain: $d entries left" >&2; exit 1; }
  kill $(jobs -p) 2>/dev/null || true  # this run's servers: nothing else runs in the background
  wait 2>/dev/null || true
  awk -v n="$d0" -v a="$t1" -v b="$t0" -v c="$clients" 'BEGIN { printf "%d %.1f %.0f %s\n", n, a - b, n / (a - b), c }'
}

echo "| run | load | entries | seconds | keys/s | clients' commands/s during the drain |"
echo "|---|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  for load in 0 1; do
    drain "$load" >"$work/run"
    read -r n s rate c <"$work/run"
    echo "| $run | $([ "$load" = 1 ] && echo "mix, 1000 keys" || echo none) | $n | $s | $rate | $c |"
  done
done
