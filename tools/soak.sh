#!/usr/bin/env bash
# Soak: lockshift under the Atlantis mix for a long run while its phase keeps moving, to show
# whether anything grows that should not: its resident memory, its open file descriptors, the
# repair journal, the mirror's drops. Every STEP seconds the phase moves on, in a loop:
# legacy-only (the first pass only), shadow, hybrid 50, enhanced-only, rollback raised, rollback
# cleared (hybrid 50 again); meanwhile tools/atlantis_loadgen (50 clients) runs over KEYS lock
# keys, by default 200 000, so per-key state that is never given back would show as growth. One
# line per step: the time, the phase, commands/s, lockshift's VmRSS and open descriptors, the
# journal depth and the mirror's compared / divergent / dropped counts. At the end the journal
# must drain and a consistency check (lockshiftctl check --wait) must find the stores equal;
# the script exits non-zero otherwise.
# Legacy and enhanced are two redis-servers; lockshift runs its default of one network thread.
# Usage: tools/soak.sh [MINUTES [STEP_SECONDS]]   (default 10 minutes, 30 s steps; KEYS=N)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-10}"
STEP="${2:-30}"
KEYS="${KEYS:-200000}"

source tools/bench_lib.sh
need_number MINUTES "$MINUTES"
need_number STEP_SECONDS "$STEP"
need_number KEYS "$KEYS"
bench_init lockshift lockshiftctl atlantis_loadgen
legacy_lockshift
status() { ctl --json status; }
# field JSON NAME: the first number after "NAME": in JSON (one status read for a whole line).
field() { grep -o "\"$2\": [0-9.]*" <<<"$1" | head -1 | awk '{ print $2 }'; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$ls_pid/status"; }
fds() { ls "/proc/$ls_pid/fd" | wc -l; }

moves=("shadow" "hybrid 50" "enhanced-only" "rollback" "hybrid 50 (rollback cleared)")
move() {  # move INDEX: the INDEX-th move of the loop; prints its label
  case "${moves[$1]}" in
    shadow) ctl phase shadow >/dev/null ;;
    "hybrid 50") ctl phase hybrid --split 50 >/dev/null ;;
    enhanced-only) ctl phase enhanced-only >/dev/null ;;
    rollback) ctl rollback --reason soak >/dev/null ;;
    "hybrid 50 (rollback cleared)") ctl rollback --clear >/dev/null; ctl phase hybrid --split 50 >/dev/null ;;
  esac
  echo "${moves[$1]}"
}

echo "tools/soak.sh $MINUTES $STEP, KEYS=$KEYS: lockshift pid $ls_pid"
echo
echo "| minute | phase | commands/s | VmRSS MiB | fds | journal | mirror compared | divergent | dropped |"
echo "|---|---|---|---|---|---|---|---|---|"
start=$(date +%s)
phase="legacy-only"
i=0
while awk -v t=$(($(date +%s) - start)) -v m="$MINUTES" 'BEGIN { exit !(t < m * 60) }'; do
  out=$(build/atlantis_loadgen --port "$ls_port" --clients 50 --seconds "$STEP" --keys "$KEYS" --events 0)
  cps=$(grep -o 'commands_per_s=[0-9]*' <<<"$out" | cut -d= -f2)
  s=$(status)
  minute=$(awk -v t=$(($(date +%s) - start)) 'BEGIN { print t / 60 }')
  printf '| %.1f | %s | %s | %.1f | %s | %s | %s | %s | %s |\n' "$minute" "$phase" "$cps" \
    "$(awk -v k="$(rss_kib)" 'BEGIN { print k / 1024 }')" "$(fds)" "$(field "$s" depth)" \
    "$(field "$s" compared)" "$(field "$s" divergent)" "$(field "$s" dropped)"
  phase=$(move $((i % ${#moves[@]})))
  i=$((i + 1))
done

# The loop may have stopped with the rollback raised: clear it, then let the journal drain.
ctl rollback --clear >/dev/null 2>&1 || true
for _ in $(seq 1 600); do
  depth=$(status_number depth)
  [ "$depth" = 0 ] && break
  sleep 0.1
done
echo
echo "journal depth after the run: $depth"
verdict=0
ctl check --wait 2>/dev/null || verdict=$?
[ "$depth" = 0 ] && [ "$verdict" = 0 ]
