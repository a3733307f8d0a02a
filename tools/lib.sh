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

# stop_pids NAME PID [NAME PID ...]: SIGTERM to all at once, wait up to
# ~10 s for all to exit, then SIGKILL the rest. Quiet about pids already gone.
stop_pids() {
  local -a names=() pids=()
  local i
  while (($# >= 2)); do
    if [[ $2 =~ ^[0-9]+$ ]] && kill -0 "$2" 2>/dev/null; then
      log "stopping $1 (pid $2)"
      kill -TERM "$2" 2>/dev/null && names+=("$1") && pids+=("$2")
    fi
    shift 2
  done
  for ((i = 0; i < 100; i++)); do
    local alive=0 p
    for p in "${pids[@]}"; do
      if kill -0 "$p" 2>/dev/null; then alive=1; fi
    done
    ((alive)) || return 0
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[i]}" 2>/dev/null; then
      log "${names[i]} (pid ${pids[i]}) ignored SIGTERM; sending SIGKILL"
      kill -KILL "${pids[i]}" 2>/dev/null || true
    fi
  done
}

# ------------------------------------------------------ stack lifecycle ----
#
# One lifecycle for the scripts that need a private dev stack (test.sh,
# demo.sh, bench.sh, inspector-check.sh):
#
#   devstack_begin NAME       WORK=$(mktemp -d .../mcpvault-NAME.XXXXXX) (0700),
#                             STATE=$WORK/stack; an EXIT trap tears down the
#                             stack and removes WORK (INT/TERM exit 130/143)
#   devstack_install          tools/devstack.sh install (the pinned venv)
#   devstack_up               start it in $STATE; sets ENV_FILE and exports
#                             MCPVAULT_DEVSTACK_ENV; dies if it does not come up
#   devstack_env              source $ENV_FILE (VAULT_ADDR, VAULT_TOKEN, ...)
#   devstack_down             stop it now (idempotent; the trap calls it too)
#
# Settings (plain variables, set before devstack_begin):
#   DEVSTACK_KEEP=1       keep WORK (logs, state) after the run
#   DEVSTACK_INDENT=STR   prefix for tools/devstack.sh's progress lines
#   DEVSTACK_QUIET_DOWN=1 no progress output from the teardown
#   DEVSTACK_ON_EXIT=FN   function called as FN RC at the very end of the trap
#                         (after teardown), e.g. to print a final verdict

# _devstack ARGS...: tools/devstack.sh, progress (stderr) prefixed by DEVSTACK_INDENT.
_devstack() {
  local sh
  sh=$(dirname "${BASH_SOURCE[0]}")/devstack.sh
  if [[ -n ${DEVSTACK_INDENT-} ]]; then
    "$sh" "$@" 2> >(sed "s/^/${DEVSTACK_INDENT}/" >&2)
  else
    "$sh" "$@"
  fi
}

devstack_begin() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcpvault-$1.XXXXXX")
  chmod 700 "$WORK"
  STATE=$WORK/stack
  mkdir -p "$STATE"
  DEVSTACK_UP=0
  trap _devstack_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

devstack_install() {
  _devstack install
}

devstack_up() {
  DEVSTACK_UP=1
  ENV_FILE=$(_devstack up "$STATE") ||
    die "the dev stack did not come up (logs in $STATE; DEVSTACK_KEEP=1 keeps them)"
  export MCPVAULT_DEVSTACK_ENV=$ENV_FILE
}

devstack_env() {
  # shellcheck disable=SC1090
  . "$ENV_FILE"
}

devstack_down() {
  if ((${DEVSTACK_UP:-0})); then
    DEVSTACK_UP=0
    if [[ ${DEVSTACK_QUIET_DOWN:-0} == 1 ]]; then
      _devstack down "$STATE" >/dev/null 2>&1 || true
    else
      log "tearing down the dev stack"
      _devstack down "$STATE" || log "devstack down reported a problem"
    fi
  fi
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
_devstack_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  devstack_down
  if [[ ${DEVSTACK_KEEP:-0} == 1 ]]; then
    log "kept $WORK (DEVSTACK_KEEP=1)"
  elif [[ -n ${WORK-} ]]; then
    rm -rf -- "$WORK"
  fi
  if [[ -n ${DEVSTACK_ON_EXIT-} ]]; then "$DEVSTACK_ON_EXIT" "$rc"; fi
  exit "$rc"
}
