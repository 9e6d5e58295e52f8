#!/usr/bin/env bash
# Side-by-side benchmark, same machine, same run, same redis-benchmark command, medians of RUNS:
#   redis-server (in memory, no persistence: what Atlantis users run today),
#   redis-server with appendfsync always (durable per write, like lockshift's group commit),
#   lockshift (embedded LMDB, legacy-only).
# Ratios are lockshift / redis-server. Also peak RSS of a fresh lockshift holding 100k locks.
#
# Usage: tools/bench.sh [RUNS]        (default 3). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
KEYSPACE="${KEYSPACE:-100000}"
TESTS="ping,set,get"

source tools/bench_lib.sh
bench_init lockshift

redis_port=$(free_port)
start_redis "$redis_port"
aof_port=$(free_port)
mkdir -p "$work/aof"
start_redis "$aof_port" --appendonly yes --appendfsync always --dir "$work/aof"

start_lockshift lockshift '[legacy]
type = "lmdb"
[enhanced]
type = "lmdb"
[migration]
phase = "legacy-only"'

# One redis-benchmark run; prints "TEST rps p50 p99" lines.
bench() {
  redis-benchmark -h 127.0.0.1 -p "$1" -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" -r "$KEYSPACE" --csv 2>/dev/null |
    awk -F, 'NR>1 { for (i = 1; i <= NF; i++) gsub(/"/, "", $i); print $1, $2, $5, $7 }'
}

for run in $(seq 1 "$RUNS"); do
  # Alternate the order so neither side always runs on a warmer machine.
  if [ $((run % 2)) -eq 1 ]; then
    bench "$redis_port" | sed 's/^/redis /' >>"$work/results"
    bench "$aof_port" | sed 's/^/aof /' >>"$work/results"
    bench "$ls_port" | sed 's/^/lockshift /' >>"$work/results"
  else
    bench "$ls_port" | sed 's/^/lockshift /' >>"$work/results"
    bench "$aof_port" | sed 's/^/aof /' >>"$work/results"
    bench "$redis_port" | sed 's/^/redis /' >>"$work/results"
  fi
done


echo "| test | redis-server rps | redis AOF-always rps | lockshift rps | ratio to redis | ratio to AOF-always | redis p50/p99 ms | lockshift p50/p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
for t in $(awk '{print $2}' "$work/results" | awk '!seen[$0]++'); do
  r=$(awk -v t="$t" '$1=="redis" && $2==t {print $3}' "$work/results" | median)
  l=$(awk -v t="$t" '$1=="lockshift" && $2==t {print $3}' "$work/results" | median)
  rp50=$(awk -v t="$t" '$1=="redis" && $2==t {print $4}' "$work/results" | median)
  rp99=$(awk -v t="$t" '$1=="redis" && $2==t {print $5}' "$work/results" | median)
  lp50=$(awk -v t="$t" '$1=="lockshift" && $2==t {print $4}' "$work/results" | median)
  lp99=$(awk -v t="$t" '$1=="lockshift" && $2==t {print $5}' "$work/results" | median)
  a=$(awk -v t="$t" '$1=="aof" && $2==t {print $3}' "$work/results" | median)
  printf '| %s | %.0f | %.0f | %.0f | %.2f× | %.2f× | %s / %s | %s / %s |\n' "$t" "$r" "$a" "$l" \
    "$(echo "$l $r" | awk '{print $1/$2}')" "$(echo "$l $a" | awk '{print $1/$2}')" "$rp50" "$rp99" "$lp50" "$lp99"
done

# Peak RSS of a fresh lockshift holding 100k locks (Atlantis-sized ~600-byte lock JSON).
kill "$ls_pid"; wait "$ls_pid" 2>/dev/null || true
rm -rf "$work/state-lockshift"
build/lockshift --config "$work/lockshift.toml" >"$work/lockshift2.log" 2>&1 &
ls_pid=$!
wait_port "$ls_port"
value=$(printf '{"Project":{"ProjectName":"p","RepoFullName":"acme/infra","Path":"mod"},"Pull":{"Num":1,"HeadCommit":"%040d","URL":"https://github.com/acme/infra/pull/1","HeadBranch":"feature","BaseBranch":"main","Author":"alice","State":0,"BaseRepo":{"FullName":"acme/infra","Owner":"acme","Name":"infra","CloneURL":"","SanitizedCloneURL":"","VCSHost":{"Hostname":"github.com","Type":0}}},"User":{"Username":"alice","Teams":null},"Workspace":"default","Time":"2026-11-21T10:00:00Z"}' 0)
awk -v v="$value" 'BEGIN { for (i = 0; i < 100000; i++) { k = "pr/acme/infra/mod" i "/default/p"; printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' |
  redis-cli -p "$ls_port" --pipe >/dev/null
redis-cli -p "$ls_port" --scan --pattern 'pr*' >/dev/null  # a full scan, as Atlantis's List does
keys=$(redis-cli -p "$ls_port" dbsize)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$ls_pid/status")
echo
echo "lockshift holding $keys locks (strict acquire, durable): peak RSS $((hwm / 1024)) MiB (VmHWM)"
