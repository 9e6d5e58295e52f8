#!/usr/bin/env bash
# Entering shadow under load: how long the backfill copies legacy into enhanced, how deep the
# repair journal gets meanwhile, and how long until lockshift accepts the move on to hybrid 50
# (it refuses while keys that would move still wait for repair). lockshift in legacy-only over two
# redis-servers holds HELD locks (tools/index_bench seed); the Atlantis mix (tools/atlantis_loadgen,
# 50 clients) runs over KEYS lock keys in 2 s pieces throughout; then the phase moves to shadow,
# and from the moment the backfill is done the move to hybrid 50 is asked every 0.5 s until it is
# accepted. Per run: the backfill's seconds, the deepest journal seen (sampled every 0.2 s), the
# seconds from entering shadow until hybrid was accepted, and the clients' commands/s in the
# first piece (before shadow) and during the backfill (the median of the pieces wholly inside it).
# Usage: tools/bench_backfill.sh [RUNS]   (default 3; HELD=20000, a multiple of 100; KEYS=200000;
# LOCKSHIFT=another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
HELD="${HELD:-20000}"
KEYS="${KEYS:-200000}"

source tools/bench_lib.sh
need_number RUNS "$RUNS"
need_number HELD "$HELD"
need_number KEYS "$KEYS"
[ $((HELD % 100)) = 0 ] || { echo "HELD must be a multiple of 100, not '$HELD'" >&2; exit 2; }
bench_init lockshift lockshiftctl atlantis_loadgen index_bench

# The backfill's state in a status JSON ("running", "done", ...).
backfill_state() { grep -o '"backfill": *{[^}]*}' <<<"$1" | grep -o '"state": *"[a-z]*"' | cut -d'"' -f4; }
journal_depth() { grep -o '"depth": [0-9]*' <<<"$1" | head -1 | awk '{ print $2 }'; }

# run: one run on a fresh lockshift, state directory and redis-servers (stopped after); prints
# "backfill_seconds peak_depth hybrid_seconds clients_before clients_during".
run() {
  rm -rf "$work/state-lockshift"
  legacy_lockshift
  build/index_bench seed --port "$ls_port" --repos $((HELD / 100)) --locks-per-repo 100 >/dev/null
  rm -f "$work/stop"
  while [ ! -e "$work/stop" ]; do
    local begun rate
    begun=$(date +%s.%N)
    rate=$(build/atlantis_loadgen --port "$ls_port" --clients 50 --seconds 2 --keys "$KEYS" --events 0 |
      grep -o 'commands_per_s=[0-9]*' | cut -d= -f2)
    echo "$begun $(date +%s.%N) $rate"
  done >"$work/load" &
  local lg=$! s state depth peak=0 t0 now filled="" hybrid=""
  sleep 3  # the first piece under way
  t0=$(date +%s.%N)
  ctl phase shadow >/dev/null
  for _ in $(seq 1 3000); do  # 10 minutes at least, at most a few more
    s=$(ctl --json status | tr -d "\n")
    now=$(date +%s.%N)
    depth=$(journal_depth "$s")
    [ "${depth:-0}" -gt "$peak" ] && peak=$depth
    state=$(backfill_state "$s")
    if [ -z "$filled" ] && [ "$state" = done ]; then filled=$now; fi
    if [ -n "$filled" ] && ctl phase hybrid --split 50 >/dev/null 2>&1; then
      hybrid=$(date +%s.%N)
      break
    fi
    sleep 0.2
  done
  touch "$work/stop"
  wait "$lg"
  kill $(jobs -p) 2>/dev/null || true  # this run's servers: nothing else runs in the background
  wait 2>/dev/null || true
  [ -n "$hybrid" ] || { echo "hybrid 50 was not accepted within 10 minutes (backfill: $state)" >&2; exit 1; }
  # The clients' figure: the pieces that ran wholly while the backfill did (all of them, when
  # the backfill was shorter than a piece, is marked with a *).
  local during
  during=$(awk -v t0="$t0" -v f="$filled" '$1 >= t0 && $2 <= f { print $3 }' "$work/load" | median)
  [ -n "$during" ] || during="$(awk '{ print $3 }' "$work/load" | median)*"
  local first
  first=$(head -1 "$work/load" | cut -d' ' -f3)
  awk -v t0="$t0" -v f="$filled" -v h="$hybrid" -v p="$peak" -v c="$during" -v b="$first" \
    'BEGIN { printf "%.1f %d %.1f %s %s\n", f - t0, p, h - t0, b, c }'
}

echo "tools/bench_backfill.sh $RUNS, HELD=$HELD, KEYS=$KEYS"
echo
echo "| run | backfill s | deepest journal | hybrid 50 accepted after s | clients' commands/s before |" \
  "during the backfill |"
echo "|---|---|---|---|---|---|"
for r in $(seq 1 "$RUNS"); do
  run >"$work/run"
  read -r b p h before c <"$work/run"
  echo "| $r | $b | $p | $h | $before | $c |"
done
