#!/usr/bin/env bash
# Instructions lockshift executes per client command, by migration phase: a count that does not
# drift with this machine's speed, for the work lockshift's own code does (the kernel's share of
# the sockets and the redis-servers are not counted). lockshift runs under Valgrind's callgrind
# (a few tens of times slower), one walk legacy-only -> hybrid 50 -> shadow -> enhanced-only
# over two redis-servers, as in tools/bench_migration.sh; in each phase the counters are zeroed,
# tools/atlantis_loadgen sends the Atlantis TryLock/Unlock mix at a fixed pace, and the counters
# are dumped. Prints, per phase, the client commands, the instructions and their ratio; TOP=N
# also lists the N functions with the most instructions including their callees.
# A change is measured against another binary with LOCKSHIFT=path/to/lockshift (bench_lib.sh):
# the same pace gives the same batching, so the counts of two runs differ by a few percent at
# most, where commands/s on this machine move by a quarter within minutes. The pace is low so
# that callgrind's lockshift keeps up; at saturation batches are larger and each command costs
# less, so these counts are an upper bound of the per-command work at full load.
# Needs valgrind (a Debian package; benchmarks only).
# Usage: tools/bench_instructions.sh   RATE (commands/s, default 1000), CLIENTS (8),
# MIX_SECONDS (10), TOP (0) from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-1000}"
CLIENTS="${CLIENTS:-8}"
MIX_SECONDS="${MIX_SECONDS:-10}"
TOP="${TOP:-0}"

source tools/bench_lib.sh
need_number RATE "$RATE"
need_number CLIENTS "$CLIENTS"
need_number MIX_SECONDS "$MIX_SECONDS"
[[ "$TOP" =~ ^[0-9]+$ ]] || { echo "TOP must be a whole number, not '$TOP'" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 2; }
binary=$(realpath "${LOCKSHIFT:-build/lockshift}")
bench_init lockshift lockshiftctl atlantis_loadgen

# lockshift re-executes itself once at start (its malloc tunables), so callgrind follows the exec.
cat >"$work/callgrind-lockshift" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/callgrind.out" "$binary" "\$@"
EOF
chmod +x "$work/callgrind-lockshift"
export LOCKSHIFT="$work/callgrind-lockshift"
export WAIT_TRIES=1200  # a minute: lockshift starts slowly under callgrind
legacy_lockshift

commands() { redis-cli -p "$ls_port" info stats | awk -F: '/^total_commands_processed:/ { print $2 + 0 }'; }
dumps=0
# measure PHASE: zero, the paced mix, dump; prints "PHASE commands instructions per-command".
measure() {
  callgrind_control -z "$ls_pid" >/dev/null 2>&1
  local before after file total
  before=$(commands)
  build/atlantis_loadgen --port "$ls_port" --clients "$CLIENTS" --seconds "$MIX_SECONDS" --keys 1000 \
    --rate "$RATE" >/dev/null
  after=$(commands)
  callgrind_control -d "$ls_pid" >/dev/null 2>&1
  dumps=$((dumps + 1))
  file="$work/callgrind.out.$dumps"
  for _ in $(seq 1 100); do grep -q '^totals:' "$file" 2>/dev/null && break; sleep 0.1; done
  total=$(awk '/^totals:/ { print $2 }' "$file")
  local n=$((after - before - 1))  # the INFO that read `after` counted itself
  [ "$n" -gt 0 ] && [ -n "$total" ] || { echo "$1: nothing measured (commands $n, instructions '$total')" >&2; exit 1; }
  echo "$1 $n $total $((total / n))"
  if [ "$TOP" -gt 0 ]; then  # (head stops the pipe early: not a failure)
    callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
      awk '/^ *[0-9,]+ +\([ 0-9.]+%\) +[^ ]/ && !/PROGRAM TOTALS/' |
      grep -v -e 'libc-start\|libc_start\|(below main)\|io_context.ipp:main\|ld-linux' | head -n "$TOP" |
      sed -e 's|/usr/include/||' -e 's|[^ ]*build/\.\./||' -e 's/^/    /' | cut -c1-180 || true
  fi
}

echo "lockshift instructions per client command (callgrind): the Atlantis mix at $RATE commands/s" \
  "from $CLIENTS clients, ${MIX_SECONDS} s per phase"
echo "phase commands instructions per-command"
measure legacy-only
ctl phase hybrid --split 50 >/dev/null
measure hybrid-50
ctl phase shadow >/dev/null
measure shadow
ctl phase enhanced-only >/dev/null
measure enhanced-only
