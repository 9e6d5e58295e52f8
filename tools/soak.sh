#!/usr/bin/env bash
# Soak: lockshift under the Atlantis mix for a long run while its phase keeps moving, to show
# whether anything grows that should not: its resident memory, its open file descriptors, the
# repair journal, the mirror's drops. Every STEP seconds the phase moves on, in a loop:
# legacy-only (the first pass only), shadow, hybrid 50, enhanced-only, rollback raised, rollback
# cleared (hybrid 50 again); meanwhile tools/atlantis_loadgen (50 clients) runs over KEYS lock
# keys, by default 200 000, so per-key state that is never given back would show as growth. One
# line per step: the time, the phase, commands/s, lockshift's VmRSS and open descriptors, the
# journal depth and the mirror's compared / divergent / dropped counts. Before the first step,
# HELD locks (10 000 by default, 100 repositories of 100; tools/index_bench seed) are taken
# through lockshift and never released, so every move carries held locks. At the end the
# journal must drain, a consistency check (lockshiftctl check --wait) must find the stores
# equal, and every held lock must be there through lockshift and on legacy directly (DESIGN §6,
# promises 2 and 3); the script exits non-zero otherwise.
# Legacy and enhanced are two redis-servers; lockshift runs its default of one network thread
# (THREADS=N: N).
# Usage: tools/soak.sh [MINUTES [STEP_SECONDS]]   (default 10 minutes, 30 s steps; KEYS=N,
# HELD=N, a multiple of 100; THREADS=N)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-10}"
STEP="${2:-30}"
KEYS="${KEYS:-200000}"
HELD="${HELD:-10000}"

source tools/bench_lib.sh
need_number MINUTES "$MINUTES"
need_number STEP_SECONDS "$STEP"
need_number KEYS "$KEYS"
need_number HELD "$HELD"
need_number THREADS "${THREADS:-1}"
[ $((HELD % 100)) = 0 ] || { echo "HELD must be a multiple of 100, not '$HELD'" >&2; exit 2; }
bench_init lockshift lockshiftctl atlantis_loadgen index_bench
legacy_lockshift
# The held locks' keys (pr/bench/repo*/...) are apart from the mix's (pr/acme/infra/...).
build/index_bench seed --port "$ls_port" --repos $((HELD / 100)) --locks-per-repo 100 >/dev/null
# held PORT: how many of the held locks a Redis-protocol server on PORT has (SCAN, as Atlantis).
held() { redis-cli -p "$1" --scan --pattern 'pr/bench/repo*' | wc -l; }
status() { ctl --json status; }
# field JSON NAME: the first number after "NAME": in JSON (one status read for a whole line).
field() { grep -o "\"$2\": [0-9.]*" <<<"$1" | head -1 | awk '{ print $2 }'; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$ls_pid/status"; }
fds() { ls "/proc/$ls_pid/fd" | wc -l; }

moves=("shadow" "hybrid 50" "enhanced-only" "rollback" "hybrid 50 (rollback cleared)")
move() {  # move INDEX: the INDEX-th move of the loop; prints its label (and why, if refused)
  local ok=0
  case "${moves[$1]}" in
    shadow) ctl phase shadow >/dev/null || ok=$? ;;
    "hybrid 50") ctl phase hybrid --split 50 >/dev/null || ok=$? ;;
    enhanced-only) ctl phase enhanced-only >/dev/null || ok=$? ;;
    rollback) ctl rollback --reason soak >/dev/null || ok=$? ;;
    "hybrid 50 (rollback cleared)")
      ctl rollback --clear >/dev/null && ctl phase hybrid --split 50 >/dev/null || ok=$? ;;
  esac
  # A refusal (a backfill still copying the held locks, say) is printed by lockshiftctl; the
  # phase stays where it was.
  [ "$ok" = 0 ] && echo "${moves[$1]}" || echo "${moves[$1]} refused, phase unchanged"
}

echo "tools/soak.sh $MINUTES $STEP, KEYS=$KEYS, HELD=$HELD ($(held "$ls_port") taken): lockshift pid $ls_pid"
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
through=$(held "$ls_port")
direct=$(held "$legacy")
echo "held locks: $through of $HELD through lockshift, $direct on legacy directly"
[ "$depth" = 0 ] && [ "$verdict" = 0 ] && [ "$through" = "$HELD" ] && [ "$direct" = "$HELD" ]
