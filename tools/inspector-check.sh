#!/usr/bin/env bash
# Optional check that the MCP Inspector CLI works with mcpvault-stdio (not part
# of tools/test.sh: npx fetches the Inspector from the npm registry).
#
#   tools/inspector-check.sh
#
# Builds release binaries (MCPVAULT_INSPECTOR_BIN_DIR=DIR uses prebuilt ones),
# starts a private dev stack (always torn down), mints a token for agentA
# (kv.* on kv:app/*), seeds secret app/x, writes an mcp.json made from
# mcp.json.example (mode 0600: it holds the token), then runs:
#
#   npx -y @modelcontextprotocol/inspector --cli --config mcp.json --server mcpvault \
#       --method tools/list
#   ... --method tools/call --tool-name kv.read --tool-arg path=app/x     (allowed)
#   ... --method tools/call --tool-name kv.read --tool-arg path=other/x   (denied)
#
# The Inspector 0.15 that npm picks on Node 20 cannot send params._meta, so the
# token travels in the server's MCPVAULT_TOKEN (the config's env). Inspector
# >= 2.x (Node >= 22.19) can send it per call with --tool-metadata token=...
# MCPVAULT_INSPECTOR_PKG overrides the npm package spec.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO"

# shellcheck source-path=SCRIPTDIR source=venv_default.sh
. "$SCRIPT_DIR/venv_default.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"
use_project_venv "$REPO"
PKG=${MCPVAULT_INSPECTOR_PKG:-@modelcontextprotocol/inspector}
say() { printf '[inspector-check] %s\n' "$*" >&2; }
die() {
  printf '[inspector-check] ERROR: %s\n' "$*" >&2
  exit 1
}

command -v npx >/dev/null 2>&1 || die "npx not found (install Node.js >= 20)"

# The stack's lifecycle (temp dir, trap, up, down) is tools/lib.sh's.
DEVSTACK_KEEP=0
DEVSTACK_QUIET_DOWN=1
devstack_begin inspector

devstack_install
if [[ -n ${MCPVAULT_INSPECTOR_BIN_DIR-} ]]; then
  BIN_DIR=$MCPVAULT_INSPECTOR_BIN_DIR
else
  say "cargo build --release --bins (clean: ~7 min on 2 cores; incremental: seconds)"
  cargo build --release --bins
  BIN_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
fi
SERVER=$BIN_DIR/mcpvault-stdio
CLI=$BIN_DIR/mcpvault
[[ -x $SERVER && -x $CLI ]] || die "binaries not found in $BIN_DIR"

say "starting the dev stack in $STATE (usually 10-30 s)"
devstack_up
devstack_env

PUB=$("$CLI" keygen --output "$WORK/root.json" 2>/dev/null)
TOKEN=$("$CLI" mint --key "$WORK/root.json" --subject agentA --tools 'kv.*' --resource 'kv:app/*' --ttl 900)
curl -sSf -X POST -H "X-Vault-Token: $VAULT_TOKEN" -H 'Content-Type: application/json' \
  "$VAULT_ADDR/v1/secret/data/mcp/agentA/app/x" --data '{"data":{"user":"demo"}}' >/dev/null
: >"$WORK/revoked.txt"

# mcp.json from the example's "mcpvault" entry, placeholders filled in.
(umask 077 && SERVER=$SERVER PUB=$PUB TOKEN=$TOKEN WORK=$WORK "$PY" - "$REPO/mcp.json.example" >"$WORK/mcp.json") <<'PY'
import json, os, sys
e = os.environ
cfg = json.load(open(sys.argv[1]))
srv = cfg["mcpServers"]["mcpvault"]
srv["command"] = e["SERVER"]
srv["env"].update({
    "MCPVAULT_PUBLIC_KEY": e["PUB"],
    "MCPVAULT_TOKEN": e["TOKEN"],
    "VAULT_ADDR": e["VAULT_ADDR"],
    "VAULT_TOKEN": e["VAULT_TOKEN"],
    "MCPVAULT_REVOCATION_FILE": e["WORK"] + "/revoked.txt",
    "MCPVAULT_AUDIT_LOG": e["WORK"] + "/audit.jsonl",
    "AWS_REGION": e["AWS_REGION"],
})
bad = [k for k, v in srv["env"].items() if "<" in v or "/ABSOLUTE/" in v]
assert not bad, f"placeholders left: {bad}"
print(json.dumps({"mcpServers": {"mcpvault": srv}}, indent=2))
PY

(cd "$WORK" && npx -y "$PKG" --help >/dev/null 2>&1) || die "npx -y $PKG failed (no registry access?)"
INSPECTOR_VERSIONS=$(find "$(npm config get cache 2>/dev/null || echo ~/.npm)/_npx" \
  -path '*/node_modules/@modelcontextprotocol/inspector/package.json' -print0 2>/dev/null |
  xargs -0 -r "$PY" -c 'import json,sys; print(" ".join(sorted({json.load(open(p))["version"] for p in sys.argv[1:]})))')
say "node $(node --version); $PKG (npx cache holds: ${INSPECTOR_VERSIONS:-?})"

failed=0
# run_case NAME CHECK -- ARGS...: run the Inspector CLI; CHECK is a python
# expression over `r` (the parsed JSON output) that must be true.
run_case() {
  local name=$1 check=$2 out rc=0
  shift 3
  printf '\n$ npx -y %s --cli --config mcp.json --server mcpvault %s\n' "$PKG" "$*"
  out=$(cd "$WORK" && npx -y "$PKG" --cli --config "$WORK/mcp.json" --server mcpvault "$@" 2>"$WORK/npx.err") || rc=$?
  if ((rc != 0)); then
    grep -v 'nodedir' "$WORK/npx.err" >&2 || true
    echo "FAIL $name: exit $rc"
    failed=$((failed + 1))
    return 0
  fi
  if CHECK=$check "$PY" -c '
import json, os, sys
r = json.loads(sys.stdin.read())
if "tools" in r:
    print("  tools:", ", ".join(t["name"] for t in r["tools"]))
else:
    print("  isError:", r.get("isError"), "| text:", (r.get("content") or [{}])[0].get("text", "")[:160])
    if "structuredContent" in r:
        print("  structuredContent:", json.dumps(r["structuredContent"])[:160])
sys.exit(0 if eval(os.environ["CHECK"]) else 1)' <<<"$out"; then
    echo "ok   $name"
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

run_case "tools/list includes kv.read" \
  '"kv.read" in [t["name"] for t in r["tools"]]' -- --method tools/list
run_case "tools/call kv.read app/x (token from MCPVAULT_TOKEN) returns the secret" \
  'not r.get("isError") and r["structuredContent"]["data"] == {"user": "demo"}' -- \
  --method tools/call --tool-name kv.read --tool-arg path=app/x
run_case "tools/call kv.read other/x is denied" \
  'r.get("isError") and r["content"][0]["text"].startswith("denied: resource not granted")' -- \
  --method tools/call --tool-name kv.read --tool-arg path=other/x

echo
if ((failed)); then
  echo "inspector-check: $failed case(s) failed"
  exit 1
fi
echo "inspector-check: all cases passed"
