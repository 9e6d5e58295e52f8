#!/usr/bin/env bash
# What any proxy costs on this machine: the Atlantis TryLock/Unlock mix (tools/atlantis_loadgen,
# 50 clients, 1000 keys) straight at redis-server, through lockshift in legacy-only, and through
# two proxies in front of the same redis-server that do far less than lockshift:
#   twemproxy (Debian's nutcracker): a single-threaded C Redis proxy that parses RESP and
#     pipelines every client's commands over one server connection, as lockshift does, but
#     keeps no lock semantics, routing state, journal or metrics per command;
#   HAProxy in TCP mode on one thread: copies bytes between each client and a connection of its
#     own to Redis without parsing them, the least work a separate process can do per command.
# Every target runs in every round, in turn, so what this machine's speed does over minutes moves
# all of them. Per round: the closed loop (as fast as each answers; commands/s, p50 and p99, and
# the proxy's CPU time per command from /proc/PID/stat), then the mix paced at each RATE, a load
# every target sustains, where the difference of the p99s is what the hop adds to a command
# (tools/bench_latency.sh explains the pacing).
# Needs nutcracker and haproxy (apt-get install nutcracker haproxy); benchmarks only, not a
# dependency of lockshift or its tests.
# Usage: tools/bench_proxies.sh [RUNS [RATE...]]   (default 3 runs, rates 10000 20000).
# Prints Markdown tables of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in nutcracker haproxy; do
  command -v "$tool" >/dev/null ||
    { echo "tools/bench_proxies.sh needs $tool: apt-get install nutcracker haproxy" >&2; exit 2; }
done
RUNS="${1:-3}"
shift || true
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(10000 20000)
SECONDS_PER_RUN="${SECONDS_PER_RUN:-6}"

source tools/bench_lib.sh
bench_init lockshift atlantis_loadgen
legacy_lockshift

twem_port=$(free_port)
cat >"$work/twemproxy.yml" <<YML
legacy:
  listen: 127.0.0.1:$twem_port
  redis: true
  preconnect: true
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:$legacy:1
YML
nutcracker -c "$work/twemproxy.yml" -o "$work/twemproxy.log" -s "$(free_port)" &
twem_pid=$!
wait_port "$twem_port" || { echo "twemproxy did not start:"; cat "$work/twemproxy.log"; exit 1; }

haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen legacy
  bind 127.0.0.1:$haproxy_port
  server legacy 127.0.0.1:$legacy
CFG
haproxy -f "$work/haproxy.cfg" -q &
haproxy_pid=$!
wait_port "$haproxy_port" || { echo "haproxy did not start"; exit 1; }

targets=(direct lockshift twemproxy haproxy)
declare -A port=([direct]=$legacy [lockshift]=$ls_port [twemproxy]=$twem_port [haproxy]=$haproxy_port)
declare -A pid=([direct]="" [lockshift]=$ls_pid [twemproxy]=$twem_pid [haproxy]=$haproxy_pid)

# run TARGET RATE: "commands_per_s p50_us p99_us proxy_cpu_us redis_cpu_us" of one run (RATE 0:
# closed loop); CPU time per command of the proxy and of the redis-server behind it.
run() {
  local p0 p1 r0 r1 out
  p0=$(ticks "${pid[$1]}"); r0=$(ticks "$legacy_pid")
  out=$(build/atlantis_loadgen --port "${port[$1]}" --clients 50 --seconds "$SECONDS_PER_RUN" --keys 1000 \
    --rate "$2")
  p1=$(ticks "${pid[$1]}"); r1=$(ticks "$legacy_pid")
  echo "$out" | sed -E 's/.*commands_per_s=([0-9]+) p50_us=([0-9]+) p99_us=([0-9]+)/\1 \2 \3/' |
    awk -v p=$((p1 - p0)) -v r=$((r1 - r0)) -v hz="$hz" -v s="$SECONDS_PER_RUN" '{ n = $1 * s
      printf "%s %s %s %.2f %.2f\n", $1, $2, $3, p * 1e6 / hz / n, r * 1e6 / hz / n }'
}
collect_results "0 ${RATES[*]}" "${targets[*]}"
col() { result_median "$@"; }
echo "Closed loop (as fast as each target answers):"
echo
echo "| target | commands/s | of direct | p50 / p99 µs | CPU µs per command: proxy | redis-server |"
echo "|---|---|---|---|---|---|"
direct_cps=$(col direct 0 1)
for target in "${targets[@]}"; do
  awk -v t="$target" -v c="$(col "$target" 0 1)" -v d="$direct_cps" -v p5="$(col "$target" 0 2)" \
    -v p9="$(col "$target" 0 3)" -v cpu="$(col "$target" 0 4)" -v r="$(col "$target" 0 5)" 'BEGIN {
      printf "| %s | %.0f | %.2f× | %s / %s | %s | %s |\n", t, c, c / d, p5, p9, (t == "direct" ? "–" : cpu), r }'
done
echo
echo "Paced (a load every target sustains): added p50 / p99 over direct in ms, then CPU µs per command"
echo "of the proxy + the redis-server behind it (direct: the redis-server's):"
echo
echo "| rate (commands/s) | direct p50 / p99 µs | direct CPU | lockshift | CPU | twemproxy | CPU | haproxy | CPU |"
echo "|---|---|---|---|---|---|---|---|---|"
for rate in "${RATES[@]}"; do
  d5=$(col direct "$rate" 2); d9=$(col direct "$rate" 3)
  line="| $rate | $d5 / $d9 | $(col direct "$rate" 5) |"
  for target in lockshift twemproxy haproxy; do
    line+=$(awk -v a="$(col "$target" "$rate" 2)" -v b="$(col "$target" "$rate" 3)" -v d5="$d5" -v d9="$d9" \
      -v p="$(col "$target" "$rate" 4)" -v r="$(col "$target" "$rate" 5)" \
      'BEGIN { printf " %.3f / %.3f | %s + %s |", (a - d5) / 1000, (b - d9) / 1000, p, r }')
  done
  echo "$line"
done
echo
echo "Medians of $RUNS runs of ${SECONDS_PER_RUN} s, 50 thread clients, Atlantis mix over 1000 keys;" \
  "lockshift on one network thread."
