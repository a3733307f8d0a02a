#!/usr/bin/env bash
# Builds both language bindings and runs their suites:
#
#   bindings/test.sh
#
# python: maturin develop into ${MCPVAULT_VENV:-<repo>/.venv}, then pytest
#         (bindings/python/test.sh)
# node:   cargo build of the napi addon, npm install, node --test
#         (bindings/node/test.sh)
#
# Both suites drive the Rust CLI (target/debug/mcpvault), built first. Prints
# each suite's summary line and a total; exits non-zero if either failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/mcpvault-bindings.XXXXXX")
trap 'rm -rf -- "$LOGS"' EXIT

run() {
  local name=$1 script=$2 rc
  printf '\n==> %s bindings (%s)\n' "$name" "${script#"$HERE"/}" >&2
  "$script" 2>&1 | tee "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  echo "$rc" >"$LOGS/$name.rc"
}

run python "$HERE/python/test.sh"
run node "$HERE/node/test.sh"

# pytest: "41 passed, 1 failed in 1.2s"; node (TAP): "# pass 23" / "# fail 0".
read -r PY_P PY_F < <(grep -E '(passed|failed|errors?|no tests ran).* in [0-9.]+s' "$LOGS/python.log" | tail -n1 |
  awk '{ p = 0; f = 0; for (i = 2; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^(failed|errors?)/) f += $(i-1) } print p, f }')
PY_P=${PY_P:-0} PY_F=${PY_F:-0}
NODE_P=$(awk '/^# pass / {v = $3} END {print v + 0}' "$LOGS/node.log")
NODE_F=$(awk '/^# fail / {v = $3} END {print v + 0}' "$LOGS/node.log")
PY_RC=$(cat "$LOGS/python.rc") NODE_RC=$(cat "$LOGS/node.rc")

echo
echo "python bindings (pytest): $PY_P passed, $PY_F failed (exit $PY_RC)"
echo "node bindings (node --test): $NODE_P passed, $NODE_F failed (exit $NODE_RC)"
echo "bindings: $((PY_P + NODE_P)) passed, $((PY_F + NODE_F)) failed"
((PY_RC == 0 && NODE_RC == 0 && PY_F + NODE_F == 0 && PY_P > 0 && NODE_P > 0))
