#!/usr/bin/env bash
# Two lockshift binaries side by side: the Atlantis TryLock/Unlock mix (tools/atlantis_loadgen,
# 50 clients) through each in turn, ROUNDS times, in one phase. Each binary has its own two
# redis-servers and runs with the same configuration, so a change to lockshift can be measured
# against the commit before it on this noisy machine: what drifts over minutes moves both.
# Per round (A and B take turns going first): commands/s and the CPU time per client command of lockshift and of the enhanced
# redis-server (user + system from /proc/PID/stat), and lockshift's user time alone (what its own
# code costs, without the kernel's share of the sockets). Then the medians and the per-round
# ratio B/A.
# A binary of another commit: git worktree add ../base REV && (cd ../base && tools/build.sh
# lockshift), then pass ../base/build/lockshift.
# Usage: tools/bench_ab.sh BINARY_A BINARY_B [PHASE [ROUNDS]]   (legacy-only, 6 rounds by default)
# SOCKETS_A / SOCKETS_B (tcp or unix; default STORE_SOCKETS, else tcp): how each binary reaches
# its redis-servers (tools/bench_lib.sh), so one binary can also be measured against itself over
# TCP and over Unix domain sockets.
# EVENTS=1 drives the clients from one epoll thread (atlantis_loadgen --events 1).
# RATE=R has the clients send R commands/s together (atlantis_loadgen --rate R) instead of as fast
# as each binary answers: at a load both sustain, the CPU per command compares the work each
# does without the scheduling luck of a saturated run (commands/s then only shows whether both
# kept up).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,18p' "$0"; exit 2; }
bin_a=$(realpath "$1"); bin_b=$(realpath "$2")
cd "$(dirname "$0")/.."
PHASE="${3:-legacy-only}"
ROUNDS="${4:-6}"
MIX_SECONDS="${MIX_SECONDS:-6}"
RATE="${RATE:-0}"

source tools/bench_lib.sh
need_number ROUNDS "$ROUNDS"
need_number MIX_SECONDS "$MIX_SECONDS"
[[ "$RATE" =~ ^[0-9]+$ ]] ||
  { echo "RATE must be a whole number of commands/s (0: as fast as answered), not '$RATE'" >&2; exit 2; }
[ "$RATE" = 0 ] || [ "${EVENTS:-0}" = 0 ] || { echo "RATE needs the thread clients (EVENTS=0)" >&2; exit 2; }
bench_init atlantis_loadgen

declare -A port ls_pids enhanced_pids
declare -A sockets=([a]="${SOCKETS_A:-${STORE_SOCKETS:-tcp}}" [b]="${SOCKETS_B:-${STORE_SOCKETS:-tcp}}")
for t in a b; do STORE_SOCKETS=${sockets[$t]} store_address 0 >/dev/null; done  # exits on a bad value
# start NAME BINARY: its redis-servers, then the binary in PHASE (not in a subshell: the exit
# trap stops only this shell's own jobs).
start() {
  local legacy enhanced
  legacy=$(free_port); start_redis "$legacy"
  enhanced=$(free_port); start_redis "$enhanced"; enhanced_pids[$1]=$!
  LOCKSHIFT=$2 start_lockshift "$1" "$(STORE_SOCKETS=${sockets[$1]} redis_stores "$legacy" "$enhanced")
[migration]
phase = \"$PHASE\""
  ls_pids[$1]=$ls_pid
  port[$1]=$ls_port
}
start a "$bin_a"
start b "$bin_b"

echo "| round | A commands/s | B commands/s | B / A | A lockshift µs | B lockshift µs | A enhanced µs |" \
  "B enhanced µs | A lockshift user µs | B lockshift user µs |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  # A first in odd rounds, B first in even ones: throughput here drifts within a minute, and a
  # fixed order would charge the drift to whichever binary always runs second.
  order="a b"
  [ $((round % 2)) = 0 ] && order="b a"
  for t in $order; do
    l0=$(ticks "${ls_pids[$t]}"); e0=$(ticks "${enhanced_pids[$t]}"); u0=$(user_ticks "${ls_pids[$t]}")
    out=$(build/atlantis_loadgen --port "${port[$t]}" --clients 50 --seconds "$MIX_SECONDS" --keys 1000 \
      --events "${EVENTS:-0}" --rate "$RATE")
    l1=$(ticks "${ls_pids[$t]}"); e1=$(ticks "${enhanced_pids[$t]}"); u1=$(user_ticks "${ls_pids[$t]}")
    rate=$(sed 's/.*commands_per_s=\([0-9]*\).*/\1/' <<<"$out")
    awk -v t=$t -v r=$round -v c="$rate" -v l=$((l1 - l0)) -v e=$((e1 - e0)) -v u=$((u1 - u0)) -v hz="$hz" \
      -v s="$MIX_SECONDS" \
      'BEGIN { n = c * s; f = 1e6 / hz / n; printf "%s %d %d %.2f %.2f %.2f\n", t, r, c, l * f, e * f, u * f }'
  done
done >"$work/rounds"
awk '{ v[$1, $2] = $3 " " $4 " " $5 " " $6 } END {
  for (r = 1; ("a", r) in v; r++) {
    split(v["a", r], a, " "); split(v["b", r], b, " ")
    printf "| %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
      r, a[1], b[1], b[1] / a[1], a[2], b[2], a[3], b[3], a[4], b[4]
  } }' "$work/rounds"
col() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$work/rounds" | median; }
ratios=$(awk '{ v[$1, $2] = $3 } END { for (r = 1; ("a", r) in v; r++) printf "%.4f\n", v["b", r] / v["a", r] }' \
  "$work/rounds" | median)
echo
[ "$RATE" = 0 ] || printf 'offered load %s commands/s; ' "$RATE"
printf 'phase %s, %s rounds of %ss: medians A %.0f, B %.0f commands/s (per-round B / A median %.2f); ' \
  "$PHASE" "$ROUNDS" "$MIX_SECONDS" "$(col a 3)" "$(col b 3)" "$ratios"
printf 'lockshift %.2f vs %.2f µs (user %.2f vs %.2f), enhanced redis %.2f vs %.2f µs per client command\n' \
  "$(col a 4)" "$(col b 4)" "$(col a 6)" "$(col b 6)" "$(col a 5)" "$(col b 5)"
