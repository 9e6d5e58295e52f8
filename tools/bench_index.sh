#!/usr/bin/env bash
# Index benchmark (issue: enhanced records): with many held locks, how long finding a
# repository's locks and releasing a pull's locks (Atlantis's UnlockByPull) take
#   - the way Atlantis does it on its Redis (SCAN MATCH, a GET per key, a DEL per match),
#     straight against the legacy redis-server;
#   - through lockshift's enhanced indexes (GET / DELETE /api/v1/locks?repo=&pull=), lockshift in
#     enhanced-only on a second redis-server keeping enhanced records;
#   - Atlantis's own sequences sent to lockshift: its SCAN MATCH pr/{repo}* is answered from
#     enhanced's name index.
# Usage: tools/bench_index.sh [RUNS]   (default 5). REPOS x LOCKS_PER_REPO locks (default
# 1000 x 100 = 100k), PULLS_PER_REPO pulls each (default 10). Prints medians as Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
REPOS="${REPOS:-1000}"
LOCKS_PER_REPO="${LOCKS_PER_REPO:-100}"
PULLS_PER_REPO="${PULLS_PER_REPO:-10}"

source tools/bench_lib.sh
bench_init lockshift index_bench
admin() {  # admin PORT METHOD TARGET [JSON] -> body
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  local body="${4:-}"
  printf '%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s' "$2" "$3" "${#body}" "$body" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}

legacy=$(free_port); enhanced=$(free_port)
start_redis "$legacy"; start_redis "$enhanced"
build/index_bench seed --port "$legacy" --repos "$REPOS" --locks-per-repo "$LOCKS_PER_REPO" \
  --pulls-per-repo "$PULLS_PER_REPO"
start_lockshift lockshift "$(redis_stores "$legacy" "$enhanced")"
# Shadow copies legacy into enhanced (records and indexes); then enhanced answers everything.
admin "$admin_port" PUT /api/v1/migration '{"phase":"shadow"}' >/dev/null
for _ in $(seq 1 1200); do
  admin "$admin_port" GET /api/v1/status | grep -q '"backfill":{[^}]*"state":"done"' && break
  sleep 0.5
done
admin "$admin_port" GET /api/v1/status | grep -q '"backfill":{[^}]*"state":"done"' || { echo "backfill did not finish"; exit 1; }
admin "$admin_port" PUT /api/v1/migration '{"phase":"enhanced-only"}' | grep -q '"phase":"enhanced-only"' ||
  { echo "could not move to enhanced-only"; exit 1; }

build/index_bench measure --legacy-port "$legacy" --lockshift-port "$ls_port" --admin-port "$admin_port" \
  --repos "$REPOS" --pulls-per-repo "$PULLS_PER_REPO" --runs "$RUNS" >"$work/results"

total=$((REPOS * LOCKS_PER_REPO))
echo "$total held locks ($REPOS repositories x $LOCKS_PER_REPO, $PULLS_PER_REPO pulls each); medians of $RUNS runs, ms"
echo
echo "| operation | legacy SCAN (Atlantis, redis-server directly) | enhanced index (lockshift) | speed-up | locks |"
echo "|---|---|---|---|---|"
row() {  # row LABEL SCAN-METRIC INDEX-METRIC
  s=$(awk -v m="$2" '$1==m {print $2}' "$work/results" | median)
  i=$(awk -v m="$3" '$1==m {print $2}' "$work/results" | median)
  n=$(awk -v m="$3" '$1==m {print $3}' "$work/results" | median)
  printf '| %s | %.2f | %.2f | %.0f× | %s |\n' "$1" "$s" "$i" "$(awk -v a="$s" -v b="$i" 'BEGIN{print a/b}')" "$n"
}
row "list a repository's locks" list-repo-legacy-scan list-repo-index
row "UnlockByPull (find and release a pull's locks)" unlock-by-pull-legacy-scan unlock-by-pull-index
echo
echo "Atlantis's own sequences (SCAN MATCH, a GET per key, a DEL per match), sent to redis-server"
echo "directly and to lockshift in enhanced-only (SCAN answered from enhanced's name index):"
echo
echo "| operation | legacy SCAN (redis-server directly) | through lockshift (name index) | speed-up | locks |"
echo "|---|---|---|---|---|"
row "list a repository's locks (SCAN MATCH pr/{repo}/*)" list-repo-legacy-scan list-repo-atlantis-via-lockshift
row "UnlockByPull (SCAN MATCH pr/{repo}*)" unlock-by-pull-legacy-scan unlock-by-pull-atlantis-via-lockshift
