# shellcheck shell=bash
# Shared helpers for the dev-stack scripts in tools/. Source it; it defines
# functions only and changes no shell options.

# Progress and errors go to stderr: stdout of the scripts is reserved for the
# one line callers capture (e.g. the env file path).
log() { printf '[devstack] %s\n' "$*" >&2; }
die() {
  printf '[devstack] ERROR: %s\n' "$*" >&2
  exit 1
}

# tail_log FILE [LINES]: show the end of a server log on stderr (for failures).
tail_log() {
  local f=$1 n=${2:-40}
  if [[ -f $f ]]; then
    printf '[devstack] ---- last %s lines of %s ----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2 || true
    printf '[devstack] ----\n' >&2
  fi
}

# free_ports PYTHON N: print N distinct free TCP ports on 127.0.0.1, one a line.
# All sockets are held open until every port is chosen so the N are distinct;
# the kernel may still hand a port to someone else before our server binds it,
# which the readiness waits then report.
free_ports() {
  "$1" - "$2" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# random_token BYTES: hex string from the kernel CSPRNG.
random_token() {
  od -An -N"${1:-16}" -tx1 /dev/urandom | tr -d ' \n'
}

# wait_for TRIES INTERVAL PID CMD...: run CMD until it succeeds, at most TRIES
# times with INTERVAL seconds between tries. Gives up at once if PID (when not
# empty) has exited, since the server we wait on then never comes up.
wait_for() {
  local tries=$1 interval=$2 pid=$3 i
  shift 3
  for ((i = 1; i <= tries; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep "$interval"
  done
  return 1
}

# stop_pid NAME PID: SIGTERM, wait up to ~10 s, then SIGKILL. Quiet if gone.
stop_pid() {
  local name=$1 pid=$2 i
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}
