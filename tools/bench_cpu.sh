#!/usr/bin/env bash
# Where the CPU goes: CPU time per request of each process (redis-benchmark, redis-server,
# lockshift), for redis-benchmark GET and SET straight at redis-server and through lockshift,
# which here has a Redis legacy store (legacy-only) or the embedded LMDB store.
#
# Throughput on this machine swings with its neighbours; CPU time per request swings much less,
# and it says what a proxy costs: on a machine whose cores are all busy (the load generator,
# Redis and lockshift share two here), throughput is at most cores / (sum of CPU per request).
# The last column is that bound for 2 cores.
#
# CPU time is user + system from /proc/PID/stat around each run (redis-benchmark's from
# /usr/bin/time). Medians of RUNS.
# Usage: tools/bench_cpu.sh [RUNS]   (default 3). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
REQUESTS="${REQUESTS:-200000}"
THREADS="${THREADS:-1}"  # lockshift's [server] threads

source tools/bench_lib.sh
bench_init lockshift

redis_port=$(free_port)
start_redis "$redis_port"
redis_pid=$!

# lockshift_on NAME LEGACY_SECTION: a lockshift in legacy-only; sets port_NAME and pid_NAME.
lockshift_on() {
  start_lockshift "$1" "threads = $THREADS
[legacy]
$2
[enhanced]
type = \"lmdb\"
[consistency]
gates = false
interval = \"0\""
  eval "pid_$1=$ls_pid; port_$1=$ls_port"
}
lockshift_on redis "type = \"redis\"
address = \"127.0.0.1:$redis_port\""
lockshift_on lmdb 'type = "lmdb"'

# measure LABEL TEST PORT LOCKSHIFT_PID REDIS_PID: one line
# "LABEL TEST rps client_us redis_us lockshift_us" per run.
measure() {
  local r0 l0 r1 l1 out client
  r0=$(ticks "$5"); l0=$(ticks "$4")
  out=$(/usr/bin/time -f 'CPU %U %S' redis-benchmark -h 127.0.0.1 -p "$3" -t "$2" -n "$REQUESTS" \
    -c 50 -r 100000 --csv 2>&1)
  r1=$(ticks "$5"); l1=$(ticks "$4")
  rps=$(echo "$out" | awk -F, 'NR>1 && /^"/ { gsub(/"/, "", $2); print $2; exit }')
  client=$(echo "$out" | awk '/^CPU/ { print $2 + $3 }')
  awk -v l="$1" -v t="$2" -v rps="$rps" -v c="$client" -v r=$((r1 - r0)) -v s=$((l1 - l0)) \
    -v hz="$hz" -v n="$REQUESTS" \
    'BEGIN { printf "%s %s %s %.2f %.2f %.2f\n", l, t, rps, c * 1e6 / n, r * 1e6 / hz / n, s * 1e6 / hz / n }'
}

for run in $(seq 1 "$RUNS"); do
  for t in get set; do
    measure direct "$t" "$redis_port" "" "$redis_pid" >>"$work/results"
    measure lockshift-redis "$t" "$port_redis" "$pid_redis" "$redis_pid" >>"$work/results"
    measure lockshift-lmdb "$t" "$port_lmdb" "$pid_lmdb" "" >>"$work/results"
  done
done

echo "redis-benchmark -n $REQUESTS -c 50 -r 100000; lockshift threads = $THREADS; CPU µs per request"
echo
echo "| target | test | rps | redis-benchmark | redis-server | lockshift | total | 2-core bound rps |"
echo "|---|---|---|---|---|---|---|---|"
for label in direct lockshift-redis lockshift-lmdb; do
  for t in get set; do
    col() { awk -v l=$label -v t=$t -v c="$1" '$1==l && $2==t { print $c }' "$work/results" | median; }
    rps=$(col 3); c=$(col 4); r=$(col 5); s=$(col 6)
    total=$(awk -v a="$c" -v b="$r" -v d="$s" 'BEGIN { print a + b + d }')
    printf '| %s | %s | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f |\n' "$label" "${t^^}" "$rps" "$c" "$r" "$s" \
      "$total" "$(awk -v x="$total" 'BEGIN { print 2e6 / x }')"
  done
done
