# Helpers the benchmark scripts share (sourced, not run).
# free_port: a loopback TCP port nothing listens on. wait_port PORT: until it answers PING
# (10 s at most, WAIT_TRIES × 0.05 s if set; non-zero if not). median: the median of the numbers on stdin.
# bench_init TARGET...: builds the targets, makes $work (a temporary directory) and, on exit,
# stops every background job and removes $work.
# start_redis PORT [ARG...]: an in-memory redis-server on 127.0.0.1:PORT and on the Unix domain
# socket $work/redis-PORT.sock, with its files in $work (later ARGs override, e.g. --appendonly
# yes), once it answers; $! is its pid afterwards.
# start_lockshift NAME BODY: writes $work/NAME.toml (a [server] section on free loopback ports
# with its state in $work/state-NAME, then BODY: more [server] lines, then other sections),
# starts lockshift on it (log in $work/NAME.log; the binary is $LOCKSHIFT, build/lockshift
# unless set) and waits until it answers. Sets ls_port, admin_port and ls_pid.
# ticks PID: the process's CPU time so far (user + system, in clock ticks; 0 for an empty PID);
# user_ticks PID: its user time alone;
# hz: clock ticks per second.
# legacy_lockshift: a legacy and an enhanced redis-server and lockshift in legacy-only in front
# of them (start_lockshift NAME lockshift); sets legacy and enhanced (their ports) and
# legacy_pid as well.
# collect_results "RATE..." "TARGET...": RUNS times, for each rate and each target in turn, appends
# the line `run TARGET RATE` prints (a function of the calling script) to results[TARGET,RATE]
# (declared here, global); result_median TARGET RATE COLUMN: the median of that column.
# ctl ARG...: build/lockshiftctl against the admin API of the lockshift start_lockshift started
# last; status_number NAME: the first number after "NAME": in its `--json status` (status's
# field names are unique enough for depth, compared, divergent, dropped).
# need_number NAME VALUE: exits 2 with "NAME must be a number, not 'VALUE'" unless VALUE is a
# positive number (digits, optionally with a fraction).
# redis_stores LEGACY_PORT ENHANCED_PORT: the [legacy], [enhanced] and [consistency] sections for
# two loopback redis-servers, with the rollout gates and scheduled checks off (a benchmark moves
# phases to measure the data path, not as a rollout decision). lockshift reaches them over TCP,
# or over their Unix domain sockets when STORE_SOCKETS=unix (store_address PORT: the address).
# Clients reach lockshift and redis-server over TCP either way, as Atlantis does.
# A port nothing listens on, below the kernel's ephemeral range (ip_local_port_range, 32768 up by
# default), so no client connection of the benchmark itself can be holding it.
free_port() { while :; do p=$(shuf -i 20000-32767 -n 1); ! (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null && { echo $p; return; }; done; }
wait_port() {
  for _ in $(seq 1 "${WAIT_TRIES:-200}"); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}
median() { sort -g | awk '{ a[NR]=$1 } END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
bench_init() {
  store_address 0 >/dev/null  # exits here on a bad STORE_SOCKETS
  tools/build.sh "$@" >/dev/null
  work=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}
start_redis() {
  redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --protected-mode no --unixsocket "$work/redis-$1.sock" "${@:2}" >"$work/redis-$1.log" 2>&1 &
  wait_port "$1"
}
start_lockshift() {
  ls_port=$(free_port); admin_port=$(free_port)
  cat >"$work/$1.toml" <<TOML
[server]
resp_listen = "127.0.0.1:$ls_port"
admin_listen = "127.0.0.1:$admin_port"
state_dir = "$work/state-$1"
$2
TOML
  "${LOCKSHIFT:-build/lockshift}" --config "$work/$1.toml" >"$work/$1.log" 2>&1 &
  ls_pid=$!
  wait_port "$ls_port" || { echo "lockshift did not start:"; cat "$work/$1.log"; exit 1; }
}
ticks() { [ -n "$1" ] && awk '{ print $14 + $15 }' "/proc/$1/stat" || echo 0; }
user_ticks() { [ -n "$1" ] && awk '{ print $14 }' "/proc/$1/stat" || echo 0; }
hz=$(getconf CLK_TCK)
store_address() {
  case "${STORE_SOCKETS:-tcp}" in
    tcp) echo "127.0.0.1:$1" ;;
    unix) echo "unix:${work:-}/redis-$1.sock" ;;
    *) echo "STORE_SOCKETS must be tcp or unix, not '$STORE_SOCKETS'" >&2; exit 2 ;;
  esac
}
redis_stores() {
  local legacy_address enhanced_address
  legacy_address=$(store_address "$1"); enhanced_address=$(store_address "$2")
  printf '[legacy]\ntype = "redis"\naddress = "%s"\n[enhanced]\ntype = "redis"\naddress = "%s"\n' \
    "$legacy_address" "$enhanced_address"
  printf '[consistency]\ngates = false\ninterval = "0"\n'
}
ctl() { build/lockshiftctl --admin "http://127.0.0.1:$admin_port" "$@"; }
status_number() { ctl --json status | grep -o "\"$1\": [0-9.]*" | head -1 | awk '{ print $2 }'; }
need_number() {
  [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v v="$2" 'BEGIN { exit !(v > 0) }' && return 0
  echo "$1 must be a number above 0, not '$2'" >&2
  exit 2
}
legacy_lockshift() {
  legacy=$(free_port); start_redis "$legacy"; legacy_pid=$!
  enhanced=$(free_port); start_redis "$enhanced"
  start_lockshift lockshift "threads = ${THREADS:-1}
$(redis_stores "$legacy" "$enhanced")"
}
collect_results() {
  declare -gA results=()
  local i rate target
  for ((i = 0; i < RUNS; i++)); do
    for rate in $1; do
      for target in $2; do
        results[$target,$rate]+="$(run "$target" "$rate")"$'\n'
      done
    done
  done
}
result_median() { echo -n "${results[$1,$2]}" | awk -v c="$3" '{ print $c }' | median; }
