#!/usr/bin/env bash
# Migration-engine benchmark, side by side in one run (medians of RUNS):
#   - redis-benchmark -t set,get -c 50: redis-server directly vs lockshift in legacy-only with
#     that redis-server as its legacy store;
#   - the Atlantis TryLock/Unlock mix (tools/atlantis_loadgen): directly vs legacy-only vs
#     hybrid 50 vs shadow vs enhanced-only (legacy and enhanced both redis-server).
# Usage: tools/bench_migration.sh [RUNS]   (default 3). Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
REQUESTS="${REQUESTS:-100000}"
MIX_SECONDS="${MIX_SECONDS:-8}"
THREADS="${THREADS:-1}"  # lockshift's [server] threads

source tools/bench_lib.sh
bench_init lockshift atlantis_loadgen
admin_put() {  # admin_put PORT JSON
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'PUT /api/v1/migration HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s' "${#2}" "$2" >&3
  head -1 <&3
  exec 3<&-
}

legacy=$(free_port); enhanced=$(free_port)
start_redis "$legacy"; start_redis "$enhanced"
start_lockshift lockshift "threads = $THREADS
$(redis_stores "$legacy" "$enhanced")"

bench() {  # bench PORT [CLIENTS [REQUESTS]] -> "TEST rps p50 p99" lines
  redis-benchmark -h 127.0.0.1 -p "$1" -t set,get -n "${3:-$REQUESTS}" -c "${2:-50}" -r 100000 --csv 2>/dev/null |
    awk -F, 'NR>1 { for (i = 1; i <= NF; i++) gsub(/"/, "", $i); print $1, $2, $5, $7 }'
}
mix() {  # mix PORT LABEL [EVENTS]: EVENTS=1 drives the 50 clients from one epoll thread
  build/atlantis_loadgen --port "$1" --clients 50 --seconds "$MIX_SECONDS" --keys 1000 --events "${3:-0}" |
    sed -e 's/[a-z0-9_]*=//g' -e "s/^/$2 /" >>"$work/mix"
}

for run in $(seq 1 "$RUNS"); do
  bench "$legacy" | sed 's/^/direct /' >>"$work/bench"
  bench "$ls_port" | sed 's/^/lockshift /' >>"$work/bench"
  # One client: the latency a request adds when nothing queues, closer to Atlantis's own load.
  bench "$legacy" 1 20000 | sed 's/^/direct /' >>"$work/light"
  bench "$ls_port" 1 20000 | sed 's/^/lockshift /' >>"$work/light"
  redis-cli -p "$legacy" flushall >/dev/null
  mix "$legacy" direct
  mix "$ls_port" legacy-only
  mix "$legacy" direct-events 1
  mix "$ls_port" legacy-only-events 1
done
admin_put "$admin_port" '{"phase":"hybrid","traffic_split":50}' >/dev/null
for run in $(seq 1 "$RUNS"); do mix "$ls_port" hybrid-50; done
# Back to shadow (legacy answers, every write replayed on enhanced and compared), then forward to
# enhanced-only (the enhanced Redis answers everything; legacy is still kept in sync).
admin_put "$admin_port" '{"phase":"shadow"}' >/dev/null
for run in $(seq 1 "$RUNS"); do mix "$ls_port" shadow; mix "$ls_port" shadow-events 1; done
admin_put "$admin_port" '{"phase":"enhanced-only"}' >/dev/null
for run in $(seq 1 "$RUNS"); do mix "$ls_port" enhanced-only; done

echo "lockshift threads = $THREADS"
echo
echo "redis-benchmark -t set,get -n $REQUESTS -c 50 -r 100000 (legacy-only, legacy = redis-server)"
echo
echo "| test | redis-server rps | lockshift rps | ratio | p99 direct / lockshift ms | added p99 ms |"
echo "|---|---|---|---|---|---|"
for t in SET GET; do
  d=$(awk -v t=$t '$1=="direct" && $2==t {print $3}' "$work/bench" | median)
  l=$(awk -v t=$t '$1=="lockshift" && $2==t {print $3}' "$work/bench" | median)
  dp=$(awk -v t=$t '$1=="direct" && $2==t {print $5}' "$work/bench" | median)
  lp=$(awk -v t=$t '$1=="lockshift" && $2==t {print $5}' "$work/bench" | median)
  printf '| %s | %.0f | %.0f | %.2f× | %s / %s | %.3f |\n' $t "$d" "$l" "$(awk -v a=$l -v b=$d 'BEGIN{print a/b}')" \
    "$dp" "$lp" "$(awk -v a=$lp -v b=$dp 'BEGIN{print a-b}')"
done
echo
echo "The same with one client (-c 1 -n 20000): nothing queues"
echo
echo "| test | redis-server rps | lockshift rps | p50 direct / lockshift ms | p99 direct / lockshift ms | added p99 ms |"
echo "|---|---|---|---|---|---|"
for t in SET GET; do
  col() { awk -v w=$1 -v t=$t -v c=$2 '$1==w && $2==t {print $c}' "$work/light" | median; }
  printf '| %s | %.0f | %.0f | %s / %s | %s / %s | %.3f |\n' $t "$(col direct 3)" "$(col lockshift 3)" \
    "$(col direct 4)" "$(col lockshift 4)" "$(col direct 5)" "$(col lockshift 5)" \
    "$(awk -v a="$(col lockshift 5)" -v b="$(col direct 5)" 'BEGIN{print a-b}')"
done
echo
echo "Atlantis TryLock/Unlock mix: 50 clients, 1000 lock keys, ${MIX_SECONDS}s per run"
echo
# mix_table SUFFIX LABEL...: the mix's table for the labels (each with SUFFIX appended), ratios
# against direct, then shadow / legacy-only.
mix_table() {
  local suffix=$1 label c cmd p50 p99 dc lc sc
  shift
  echo "| target | cycles/s | commands/s | ratio to direct | p50 µs | p99 µs |"
  echo "|---|---|---|---|---|---|"
  col() { awk -v l="$1$suffix" -v c="$2" '$1==l {print $c}' "$work/mix" | median; }
  dc=$(col direct 3)
  for label in "$@"; do
    c=$(col "$label" 2); cmd=$(col "$label" 3); p50=$(col "$label" 4); p99=$(col "$label" 5)
    printf '| %s | %.0f | %.0f | %.2f× | %s | %s |\n' "$label$suffix" "$c" "$cmd" \
      "$(awk -v a="$cmd" -v b="$dc" 'BEGIN{print a/b}')" "$p50" "$p99"
  done
  lc=$(col legacy-only 3); sc=$(col shadow 3)
  echo
  printf 'shadow / legacy-only throughput%s: %.2f×\n' "${suffix:+ ($suffix)}" "$(awk -v a="$sc" -v b="$lc" 'BEGIN{print a/b}')"
}
mix_table "" direct legacy-only hybrid-50 shadow enhanced-only
echo
echo "The same mix with the 50 clients on one epoll thread (atlantis_loadgen --events 1), the way"
echo "Go's runtime runs go-redis's goroutines; the client then needs far less CPU."
echo
mix_table -events direct legacy-only shadow
echo
exec 3<>"/dev/tcp/127.0.0.1/$admin_port"
printf 'GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
echo "shadow mirror after the runs: $(cat <&3 | grep -o '"compared":[0-9]*,"divergent":[0-9]*,[^,]*,"dropped":[0-9]*,[^}]*"by_kind":{[^}]*}')"
exec 3<&-
