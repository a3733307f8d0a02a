# shellcheck shell=bash
# Sourced by tools/test.sh, demo.sh, bench.sh, inspector-check.sh and .ci/run:
# picks the dev-stack venv when MCPVAULT_VENV is not set.
#
# As root, tools/devstack.sh runs PostgreSQL (whose binaries live in the venv)
# as an unprivileged account, which cannot reach a venv below a directory
# closed to others (e.g. a clone under /root, mode 0700). Then the venv goes
# to /var/cache/mcpvault/venv instead, and a line on stderr says so.

# open_to_others PATH: every existing directory on the way to PATH is o+x.
open_to_others() {
  local p=$1 d='' part mode
  local -a parts
  while [[ ! -e $p && $p == /* && $p != / ]]; do p=$(dirname "$p"); done
  IFS=/ read -r -a parts <<<"$p"
  for part in '' "${parts[@]}"; do
    [[ -n $part || -z $d ]] || continue
    d=${d%/}/$part
    mode=$(stat -c '%a' "$d" 2>/dev/null) || return 1
    # The last octal digit is "others"; odd means o+x.
    ((${mode: -1} % 2 == 1)) || return 1
  done
}

# default_venv PREFERRED: print MCPVAULT_VENV if set, else PREFERRED, else
# (as root, when PREFERRED is not reachable by others) /var/cache/mcpvault/venv.
default_venv() {
  local want=$1
  if [[ -n ${MCPVAULT_VENV-} ]]; then
    printf '%s\n' "$MCPVAULT_VENV"
  elif [[ $(id -u) -eq 0 ]] && ! open_to_others "$want"; then
    printf 'note: %s is not reachable by the PostgreSQL account; using /var/cache/mcpvault/venv\n' \
      "$want" >&2
    printf '%s\n' /var/cache/mcpvault/venv
  else
    printf '%s\n' "$want"
  fi
}

# use_project_venv REPO: the scripts' shared preamble. Sets VENV and PY and
# exports MCPVAULT_VENV (the venv tools/devstack.sh installs into).
use_project_venv() {
  VENV=$(default_venv "$1/.venv")
  export MCPVAULT_VENV=$VENV
  # shellcheck disable=SC2034  # used by the sourcing script
  PY=$VENV/bin/python
}
