#!/usr/bin/env bash
# Migration-engine benchmark, side by side in one run (medians of RUNS):
#   - redis-benchmark -t set,get -c 50: redis-server directly vs lockshift in legacy-only with
#     that redis-server as its legacy store, over 100 000 keys (-r 100000), with one client, and
#     as written, without -r: every request then names the same key, "key:__rand_int__";
#   - the Atlantis TryLock/Unlock mix (tools/atlantis_loadgen): directly vs legacy-only vs
#     hybrid 50 vs shadow vs enhanced-only (legacy and enhanced both redis-server).
# Each run measures every target and phase in turn, so the runs a ratio compares are minutes
# apart at most: throughput on this machine drifts with its neighbours over minutes, more than the
# differences measured. Two lockshift processes: one stays in legacy-only, as a fleet is before
# its migration starts (a lockshift back in legacy-only after enhanced was filled journals every
# write as dirty for enhanced, DESIGN §2, which is not what the legacy-only targets are about);
# the other walks hybrid 50 -> shadow -> enhanced-only in every run, on its own two
# redis-servers, which nothing else writes to (the legacy one here is flushed between runs). The
# shadow / legacy-only ratio is also given as the median of the per-run ratios.
# Usage: tools/bench_migration.sh [RUNS]   (default 3). Prints Markdown tables.
# STORE_SOCKETS=unix: lockshift reaches its redis-servers over their Unix domain sockets, as a
# lockshift on the Redis host can (the clients still use TCP, to redis-server and to lockshift).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
REQUESTS="${REQUESTS:-100000}"
MIX_SECONDS="${MIX_SECONDS:-8}"
THREADS="${THREADS:-1}"  # lockshift's [server] threads

source tools/bench_lib.sh
bench_init lockshift atlantis_loadgen
admin_put() {  # admin_put PORT JSON: stops the benchmark unless lockshift answers 200
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'PUT /api/v1/migration HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s' "${#2}" "$2" >&3
  status=$(head -1 <&3)
  exec 3<&-
  [[ "$status" == *" 200 "* ]] || { echo "PUT /api/v1/migration $2: $status" >&2; exit 1; }
}

legacy=$(free_port); enhanced=$(free_port)
start_redis "$legacy"; start_redis "$enhanced"
walk_legacy=$(free_port); walk_enhanced=$(free_port)
start_redis "$walk_legacy"; start_redis "$walk_enhanced"
start_lockshift walker "threads = $THREADS
$(redis_stores "$walk_legacy" "$walk_enhanced")"
walk_port=$ls_port walk_admin=$admin_port
start_lockshift lockshift "threads = $THREADS
$(redis_stores "$legacy" "$enhanced")"

bench() {  # bench PORT [CLIENTS [REQUESTS [KEYSPACE]]] -> "TEST rps p50 p99" lines (KEYSPACE 0: no -r)
  local keys=${4:-100000}
  redis-benchmark -h 127.0.0.1 -p "$1" -t set,get -n "${3:-$REQUESTS}" -c "${2:-50}" \
    $([ "$keys" != 0 ] && echo -r "$keys") --csv 2>/dev/null |
    awk -F, 'NR>1 { for (i = 1; i <= NF; i++) gsub(/"/, "", $i); print $1, $2, $5, $7 }'
}
mix() {  # mix PORT LABEL [EVENTS] -> "LABEL cycles/s commands/s p50 p99 RUN" in $work/mix
  # EVENTS=1 drives the 50 clients from one epoll thread.
  build/atlantis_loadgen --port "$1" --clients 50 --seconds "$MIX_SECONDS" --keys 1000 --events "${3:-0}" |
    sed -e 's/[a-z0-9_]*=//g' -e "s/^/$2 /" -e "s/\$/ $run/" >>"$work/mix"
}

for run in $(seq 1 "$RUNS"); do
  bench "$legacy" | sed 's/^/direct /' >>"$work/bench"
  bench "$ls_port" | sed 's/^/lockshift /' >>"$work/bench"
  # One client: the latency a request adds when nothing queues, closer to Atlantis's own load.
  bench "$legacy" 1 20000 | sed 's/^/direct /' >>"$work/light"
  bench "$ls_port" 1 20000 | sed 's/^/lockshift /' >>"$work/light"
  # As the issue writes it: no -r, so all 50 clients name one key.
  bench "$legacy" 50 50000 0 | sed 's/^/direct /' >>"$work/onekey"
  bench "$ls_port" 50 50000 0 | sed 's/^/lockshift /' >>"$work/onekey"
  redis-cli -p "$legacy" flushall >/dev/null
  mix "$legacy" direct
  mix "$ls_port" legacy-only
  mix "$legacy" direct-events 1
  mix "$ls_port" legacy-only-events 1
  admin_put "$walk_admin" '{"phase":"hybrid","traffic_split":50}'
  mix "$walk_port" hybrid-50
  # Shadow: legacy answers, every write is replayed on enhanced and compared.
  admin_put "$walk_admin" '{"phase":"shadow"}'
  mix "$walk_port" shadow
  mix "$walk_port" shadow-events 1
  # Enhanced-only: the enhanced Redis answers everything; legacy is still kept in sync.
  admin_put "$walk_admin" '{"phase":"enhanced-only"}'
  mix "$walk_port" enhanced-only
done

echo "lockshift threads = $THREADS; lockshift reaches its stores over ${STORE_SOCKETS:-tcp}"
echo
echo "redis-benchmark -t set,get -n $REQUESTS -c 50 -r 100000 (legacy-only, legacy = redis-server)"
echo
# ratio_table FILE: SET and GET from FILE's "TARGET TEST rps p50 p99" lines, lockshift against
# redis-server directly (medians).
ratio_table() {
  local t
  echo "| test | redis-server rps | lockshift rps | ratio | p99 direct / lockshift ms | added p99 ms |"
  echo "|---|---|---|---|---|---|"
  for t in SET GET; do
    col() { awk -v w="$1" -v t=$t -v c="$2" '$1==w && $2==t {print $c}' "$3" | median; }
    printf '| %s | %.0f | %.0f | %.2f× | %s / %s | %.3f |\n' $t "$(col direct 3 "$1")" "$(col lockshift 3 "$1")" \
      "$(awk -v a="$(col lockshift 3 "$1")" -v b="$(col direct 3 "$1")" 'BEGIN{print a/b}')" "$(col direct 5 "$1")" \
      "$(col lockshift 5 "$1")" "$(awk -v a="$(col lockshift 5 "$1")" -v b="$(col direct 5 "$1")" 'BEGIN{print a-b}')"
  done
}
ratio_table "$work/bench"
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
echo "As written, without -r (-c 50 -n 50000): every request names the key \"key:__rand_int__\". Before"
echo "the migration starts (legacy-only, enhanced never in use) writes to one key go to legacy together;"
echo "from then on they wait for each other, one round trip to legacy each"
echo
ratio_table "$work/onekey"
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
  printf 'shadow / legacy-only throughput%s: %.2f× (median of the per-run ratios: %s)\n' \
    "${suffix:+ ($suffix)}" "$(awk -v a="$sc" -v b="$lc" 'BEGIN{print a/b}')" \
    "$(run_ratios shadow legacy-only "$suffix")"
}
# run_ratios A B SUFFIX: each run's commands/s of A over B's, then their median ("0.71 0.69 → 0.70×").
run_ratios() {
  local ratios
  ratios=$(awk -v a="$1$3" -v b="$2$3" '$1==a { x[$6] = $3 } $1==b { y[$6] = $3 }
    END { for (r in x) if (r in y) printf "%d %.2f\n", r, x[r] / y[r] }' "$work/mix" | sort -n | cut -d' ' -f2)
  printf '%s → %.2f×' "$(echo $ratios)" "$(echo "$ratios" | median)"
}
mix_table "" direct legacy-only hybrid-50 shadow enhanced-only
echo
echo "The same mix with the 50 clients on one epoll thread (atlantis_loadgen --events 1), the way"
echo "Go's runtime runs go-redis's goroutines; the client then needs far less CPU."
echo
mix_table -events direct legacy-only shadow
echo
exec 3<>"/dev/tcp/127.0.0.1/$walk_admin"
printf 'GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
echo "shadow mirror after the runs: $(cat <&3 | grep -o '"compared":[0-9]*,"divergent":[0-9]*,[^,]*,"dropped":[0-9]*,[^}]*"by_kind":{[^}]*}')"
exec 3<&-
