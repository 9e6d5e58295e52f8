#!/usr/bin/env bash
# Consistency-diff benchmark: `lockshiftctl diff` (offline, straight against the stores) over N
# equal keys in both stores (filled through lockshift, so enhanced holds enhanced records), for
# LMDB/LMDB and Redis/Redis. Reports keys/s and peak RSS of the
# diff process (GNU time's "Maximum resident set size"), medians of RUNS.
# Usage: tools/bench_diff.sh [RUNS] [KEYS...]   (defaults: 3, 100000 1000000). Prints Markdown.
# STORES="lmdb" (or "redis") limits the run to one pair.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
STORES="${STORES:-redis lmdb}"
shift || true
SIZES=("${@:-100000 1000000}")
read -r -a SIZES <<<"${SIZES[*]}"

source tools/bench_lib.sh
bench_init lockshift lockshiftctl
# Atlantis-shaped lock values, as redis-cli --pipe input.
commands() {  # commands N
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) {
    k = "pr/acme/infra/mod" i "/default/"
    v = "{\"Project\":{\"ProjectName\":\"\",\"RepoFullName\":\"acme/infra\",\"Path\":\"mod" i "\"},\"Pull\":{\"Num\":" i % 5000 ",\"Author\":\"alice\"},\"User\":{\"Username\":\"alice\"},\"Workspace\":\"default\",\"Time\":\"2026-11-22T00:00:00Z\"}"
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }'
}
diff_run() {  # diff_run CONFIG LABEL N
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss" build/lockshiftctl diff --config "$1" --rounds 1 >"$work/out" 2>/dev/null ||
    { echo "diff failed:"; cat "$work/out"; exit 1; }
  end=$(date +%s.%N)
  grep -q clean "$work/out" || { echo "diff not clean:"; cat "$work/out"; exit 1; }
  echo "$2 $3 $(awk -v s="$start" -v e="$end" -v n="$3" 'BEGIN{print n/(e-s)}') $(cat "$work/rss")" >>"$work/results"
}

# fill_and_diff LABEL N STORES_TOML: writes a config with the given [legacy]/[enhanced] sections,
# fills both stores with N keys through lockshift in hybrid 0 (every key goes to legacy and, as
# an enhanced record, to enhanced), stops lockshift and runs the diff RUNS times.
fill_and_diff() {
  local name="${1%%/*}-$2"
  start_lockshift "$name" "$3
[migration]
phase = \"hybrid\"
traffic_split = 0
[consistency]
interval = \"0\""
  sleep 0.5
  commands "$2" | redis-cli -p "$ls_port" --pipe >/dev/null
  kill "$ls_pid"; wait "$ls_pid" || true
  local config="$work/$name.toml"
  for run in $(seq 1 "$RUNS"); do diff_run "$config" "$1" "$2"; done
}

for n in "${SIZES[@]}"; do
  if [[ " $STORES " == *" redis "* ]]; then
  a=$(free_port); b=$(free_port)
  start_redis "$a"; start_redis "$b"
  fill_and_diff redis/redis "$n" "[legacy]
type = \"redis\"
address = \"127.0.0.1:$a\"
[enhanced]
type = \"redis\"
address = \"127.0.0.1:$b\""
  redis-cli -p "$a" shutdown nosave >/dev/null 2>&1 || true
  redis-cli -p "$b" shutdown nosave >/dev/null 2>&1 || true
  fi

  if [[ " $STORES " == *" lmdb "* ]]; then
  fill_and_diff lmdb/lmdb "$n" '[legacy]
map_size = "4GiB"
sync = false
[enhanced]
map_size = "4GiB"
sync = false'
  fi
  rm -rf "$work/state-lmdb-$n" "$work/state-redis-$n"
done

echo "lockshiftctl diff --rounds 1 (offline), equal stores, medians of $RUNS runs"
echo
echo "| stores | keys | keys/s | peak RSS MiB |"
echo "|---|---|---|---|"
for n in "${SIZES[@]}"; do
  for s in redis/redis lmdb/lmdb; do
    grep -q "^$s $n " "$work/results" || continue
    rate=$(awk -v s=$s -v n=$n '$1==s && $2==n {print $3}' "$work/results" | median)
    rss=$(awk -v s=$s -v n=$n '$1==s && $2==n {print $4}' "$work/results" | median)
    printf '| %s | %d | %.0f | %.0f |\n' "$s" "$n" "$rate" "$(awk -v r=$rss 'BEGIN{print r/1024}')"
  done
done
