#!/usr/bin/env bash
# Where the CPU goes in each migration phase: CPU time per client command of each process (the
# load generator, lockshift, the legacy and the enhanced redis-server) for the Atlantis
# TryLock/Unlock mix (tools/atlantis_loadgen, 50 clients) through lockshift in legacy-only,
# shadow and enhanced-only, plus the mix straight at redis-server.
#
# On this machine every process shares two cores, so throughput is at most
# 2 s of CPU per second / (total µs per command): the "2-core bound" column. The ratio of two
# phases' bounds is what the throughput ratio can reach here (e.g. shadow vs legacy-only), and the
# columns say which process a phase adds its cost to. Whether the machine was in fact the limit
# says the "idle cores" column (CPU time no process used, from /proc/stat); "server cores" is how
# much of a core the single-threaded server the clients talk to used (lockshift, or redis-server
# in the direct runs). A server near one core with cores idle is the limit, not the machine.
#
# CPU time is user + system from /proc/PID/stat around each run (the load generator's from
# /usr/bin/time). Medians of RUNS. A second table splits lockshift's and the legacy
# redis-server's time into user and kernel (system) time: in the direct runs the "legacy redis"
# is the redis-server the load generator talks to, so its kernel time is what serving the
# clients' sockets costs, which a proxy pays as well.
# Two lockshift processes, each with its own two redis-servers: one stays in legacy-only (a
# lockshift back in legacy-only after enhanced was filled journals every write as dirty for
# enhanced, DESIGN §2); the other moves to shadow and enhanced-only in every run. The direct runs
# go to the first one's legacy redis-server.
# Usage: tools/bench_cpu_mix.sh [RUNS]   (default 3). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
MIX_SECONDS="${MIX_SECONDS:-6}"
THREADS="${THREADS:-1}"  # lockshift's [server] threads

source tools/bench_lib.sh
need_number RUNS "$RUNS"
need_number MIX_SECONDS "$MIX_SECONDS"
[[ "$THREADS" =~ ^[0-9]+$ ]] || { echo "THREADS must be a whole number (0: one per core), not '$THREADS'" >&2; exit 2; }
bench_init lockshift atlantis_loadgen

# redis_pair NAME: two redis-servers; sets NAME_legacy, NAME_enhanced (ports) and their _pid.
redis_pair() {
  local port
  for role in legacy enhanced; do
    port=$(free_port)
    start_redis "$port"
    eval "$1_$role=$port $1_${role}_pid=$!"
  done
}
redis_pair walk
start_lockshift walker "threads = $THREADS
$(redis_stores "$walk_legacy" "$walk_enhanced")"
walk_port=$ls_port walk_admin=$admin_port walk_pid=$ls_pid
redis_pair plain
legacy=$plain_legacy enhanced=$plain_enhanced
start_lockshift lockshift "threads = $THREADS
$(redis_stores "$legacy" "$enhanced")"

set_phase() {  # set_phase PHASE: PUT /api/v1/migration to the walker; stops unless it answers 200
  local body="{\"phase\":\"$1\"}" status
  exec 3<>"/dev/tcp/127.0.0.1/$walk_admin"
  printf 'PUT /api/v1/migration HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s' \
    "${#body}" "$body" >&3
  status=$(head -1 <&3)
  exec 3<&-
  [[ "$status" == *" 200 "* ]] || { echo "phase $1: $status" >&2; exit 1; }
}

# user_ticks PID: user-mode CPU ticks of PID (0 without one).
user_ticks() { [ -n "$1" ] && awk '{ print $14 }' "/proc/$1/stat" || echo 0; }

# idle_ticks: the machine's idle and iowait ticks so far (all cores).
idle_ticks() { awk '/^cpu / { print $5 + $6 }' /proc/stat; }

# measure LABEL PORT LOCKSHIFT_PID LEGACY_PID ENHANCED_PID: one line "LABEL commands_per_s
# loadgen_us lockshift_us legacy_us enhanced_us lockshift_user_us lockshift_system_us legacy_user_us
# legacy_system_us idle_cores server_cores" (the server: lockshift, or without one the legacy redis).
measure() {
  local l0 s0 e0 l1 s1 e1 su0 su1 lu0 lu1 i0 i1 out cps client
  l0=$(ticks "$4"); e0=$(ticks "$5"); s0=$(ticks "$3"); su0=$(user_ticks "$3"); lu0=$(user_ticks "$4")
  i0=$(idle_ticks)
  out=$(/usr/bin/time -f 'CPU %U %S' build/atlantis_loadgen --port "$2" --clients 50 \
    --seconds "$MIX_SECONDS" --keys 1000 --events 0 2>&1)
  l1=$(ticks "$4"); e1=$(ticks "$5"); s1=$(ticks "$3"); su1=$(user_ticks "$3"); lu1=$(user_ticks "$4")
  i1=$(idle_ticks)
  cps=$(echo "$out" | grep -o 'commands_per_s=[0-9]*' | cut -d= -f2)
  client=$(echo "$out" | awk '/^CPU/ { print $2 + $3 }')
  awk -v l="$1" -v cps="$cps" -v c="$client" -v s=$((s1 - s0)) -v r=$((l1 - l0)) -v e=$((e1 - e0)) \
    -v su=$((su1 - su0)) -v ru=$((lu1 - lu0)) -v i=$((i1 - i0)) -v hz="$hz" -v secs="$MIX_SECONDS" 'BEGIN {
      n = cps * secs
      printf "%s %s %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", l, cps, c * 1e6 / n, s * 1e6 / hz / n,
        r * 1e6 / hz / n, e * 1e6 / hz / n, su * 1e6 / hz / n, (s - su) * 1e6 / hz / n, ru * 1e6 / hz / n,
        (r - ru) * 1e6 / hz / n, i / hz / secs, (s > 0 ? s : r) / hz / secs }'
}

for run in $(seq 1 "$RUNS"); do
  measure direct "$plain_legacy" "" "$plain_legacy_pid" "" >>"$work/results"
  measure legacy-only "$ls_port" "$ls_pid" "$plain_legacy_pid" "$plain_enhanced_pid" >>"$work/results"
  for phase in shadow enhanced-only; do
    set_phase "$phase"
    measure "$phase" "$walk_port" "$walk_pid" "$walk_legacy_pid" "$walk_enhanced_pid" >>"$work/results"
  done
done

echo "Atlantis mix, 50 clients, 1000 keys, ${MIX_SECONDS}s per run; lockshift threads = $THREADS;"
echo "CPU µs per client command, medians of $RUNS"
echo
echo "| target | commands/s | load generator | lockshift | legacy redis | enhanced redis | total |" \
  "2-core bound commands/s | idle cores | server cores |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for label in direct legacy-only shadow enhanced-only; do
  col() { awk -v l="$label" -v c="$1" '$1==l { print $c }' "$work/results" | median; }
  cps=$(col 2); g=$(col 3); s=$(col 4); r=$(col 5); e=$(col 6)
  total=$(awk -v a="$g" -v b="$s" -v c="$r" -v d="$e" 'BEGIN { print a + b + c + d }')
  printf '| %s | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %.2f | %.2f |\n' "$label" "$cps" "$g" "$s" \
    "$r" "$e" "$total" "$(awk -v x="$total" 'BEGIN { print 2e6 / x }')" "$(col 11)" "$(col 12)"
done
echo
echo "User and kernel (system) time of the proxy and the legacy redis-server, µs per client command:"
echo
echo "| target | lockshift user | lockshift system | legacy redis user | legacy redis system |"
echo "|---|---|---|---|---|"
for label in direct legacy-only shadow enhanced-only; do
  col() { awk -v l="$label" -v c="$1" '$1==l { print $c }' "$work/results" | median; }
  printf '| %s | %.1f | %.1f | %.1f | %.1f |\n' "$label" "$(col 7)" "$(col 8)" "$(col 9)" "$(col 10)"
done
