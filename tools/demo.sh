#!/usr/bin/env bash
# The one command that runs mcpvault end to end on dev backends it starts itself:
#
#   tools/demo.sh
#
# installs the dev stack (OpenBao, PostgreSQL, moto, the MCP Python SDK), builds
# the binaries (release; MCPVAULT_DEMO_DEBUG=1 for a debug build;
# MCPVAULT_DEMO_BIN_DIR=DIR uses prebuilt binaries instead), starts a
# private stack in a temp dir (always torn down), creates a root key, mints a
# token for agentA and attenuates it, then drives mcpvault-stdio with the
# official MCP Python SDK (tools/demo_client.py): list tools, KV write/read,
# transit encrypt/decrypt, denials, live revocation, KMS when offered.
#
# Every step states what it expects; the exit status is non-zero when any
# expectation fails, so the demo is also an end-to-end check. Tokens and keys
# are shown as short prefixes only.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO"

# shellcheck source-path=SCRIPTDIR source=venv_default.sh
. "$SCRIPT_DIR/venv_default.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"
use_project_venv "$REPO"

heading() { printf '\n=== %s ===\n' "$*"; }
short() { printf '%s…' "${1:0:12}"; }
die() {
  printf 'tools/demo.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

# The stack's lifecycle (temp dir, trap, up, down) is tools/lib.sh's; the
# trap ends with the verdict line.
# shellcheck disable=SC2317  # invoked by the EXIT trap
verdict() {
  if (($1 == 0)); then
    echo "demo: all expectations met"
  else
    echo "demo: FAILED (exit $1)"
  fi
}
DEVSTACK_KEEP=${MCPVAULT_DEMO_KEEP:-0}
DEVSTACK_INDENT='  '
DEVSTACK_ON_EXIT=verdict
devstack_begin demo

# ------------------------------------------------------------------ build --

heading "Installing the dev stack venv ($VENV)"
devstack_install

if [[ -n ${MCPVAULT_DEMO_BIN_DIR-} ]]; then
  # Prebuilt binaries (e.g. an installed release): no build.
  heading "Using prebuilt binaries in $MCPVAULT_DEMO_BIN_DIR"
  SERVER=$MCPVAULT_DEMO_BIN_DIR/mcpvault-stdio
  CLI=$MCPVAULT_DEMO_BIN_DIR/mcpvault
else
  if [[ ${MCPVAULT_DEMO_DEBUG:-0} == 1 ]]; then
    PROFILE=debug
    heading "Building (debug): cargo build --bins"
    echo "  (a clean debug build takes ~3 min on 2 cores; incremental ones seconds)"
    cargo build --bins
  else
    PROFILE=release
    heading "Building (release): cargo build --release --bins"
    echo "  (a clean release build takes ~7 min on 2 cores; incremental ones seconds)"
    cargo build --release --bins
  fi
  TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  SERVER=$TARGET_DIR/$PROFILE/mcpvault-stdio
  CLI=$TARGET_DIR/$PROFILE/mcpvault
fi
[[ -x $SERVER && -x $CLI ]] || die "binaries not found: $SERVER, $CLI"
echo "  $SERVER"
echo "  $CLI"

# -------------------------------------------------------------- dev stack --

heading "Starting OpenBao, PostgreSQL and moto (state: $STATE; usually 10-30 s)"
devstack_up
devstack_env
echo "  OpenBao $VAULT_ADDR, KMS (moto) $AWS_ENDPOINT_URL_KMS, PostgreSQL 127.0.0.1:$PG_PORT"

# ----------------------------------------------------------------- tokens --

heading "Token CLI: keygen, mint, attenuate, inspect, verify"
KEY=$WORK/keys/root.json
PUB=$("$CLI" keygen --output "$KEY")
echo "  \$ mcpvault keygen --output $KEY"
echo "  public key: $(short "$PUB") (private key stays in $KEY, mode $(stat -c %a "$KEY"))"

MINT_ARGS=(--key "$KEY" --subject agentA --issuer demo --ttl 900
  --tools 'kv.*,transit.*,kms.*'
  --resource 'kv:app/*' --resource 'transit:app-*' --resource 'kms:alias/app'
  --reveal 'kv:app/*' --reveal 'transit:app-*' --reveal 'kms:alias/app')
echo "  \$ mcpvault mint ${MINT_ARGS[*]}"
TOKEN=$("$CLI" mint "${MINT_ARGS[@]}")
echo "  token (full, agentA): $(short "$TOKEN") (${#TOKEN} chars)"

echo "  \$ mcpvault attenuate --token - --pubkey <pub> --tools kv.read --ttl 600 --reveal none"
TOKEN_RO=$(printf '%s' "$TOKEN" | "$CLI" attenuate --token - --pubkey "$PUB" --tools kv.read --ttl 600 --reveal none)
echo "  token (read-only):    $(short "$TOKEN_RO") (${#TOKEN_RO} chars)"

TOKEN_B=$("$CLI" mint --key "$KEY" --subject agentB --tools 'kv.*' --ttl 900)

# A loopback API of the demo's own (started by the client) and a token that may call
# it and read app/* but reveals nothing: it uses the password without seeing it.
API_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
API_URL="http://127.0.0.1:$API_PORT"
echo "  \$ mcpvault mint --tools kv.read,http.request --resource 'kv:app/*' --resource 'http:$API_URL/v1/*'   (no --reveal)"
TOKEN_API=$("$CLI" mint --key "$KEY" --subject agentA --ttl 900 --tools 'kv.read,http.request' \
  --resource 'kv:app/*' --resource "http:$API_URL/v1/*")
echo "  token (agentB):       $(short "$TOKEN_B")"

printf '%s' "$TOKEN_RO" | "$CLI" inspect --token - >"$WORK/inspect.json"
"$PY" - "$WORK/inspect.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"  inspect (read-only token): {d['block_count']} blocks, "
      f"{len(d['revocation_ids'])} revocation ids")
for i, b in enumerate(d["blocks"]):
    facts = ", ".join(b.get("facts", [])[:6])
    checks = len(b.get("checks", []))
    print(f"    block {i}: facts [{facts}{', …' if len(b.get('facts', [])) > 6 else ''}], {checks} checks")
PY

verify() {
  local want=$1 tool=$2 resource=$3 out rc=0
  out=$(printf '%s' "$TOKEN_RO" | "$CLI" verify --token - --pubkey "$PUB" --subject agentA \
    --tool "$tool" --resource "$resource" 2>&1 >/dev/null) || rc=$?
  printf '  $ mcpvault verify --token <read-only> --tool %s --resource %s -> exit %s %s\n' \
    "$tool" "$resource" "$rc" "${out:+($out)}"
  [[ $rc == "$want" ]] || die "expected exit $want from mcpvault verify --tool $tool --resource $resource"
}
verify 0 kv.read kv:app/demo-db
verify 1 kv.write kv:app/demo-db

# ----------------------------------------------------------------- server --

REVOCATION_FILE=$WORK/revoked.txt
AUDIT_LOG=$WORK/audit.jsonl
: >"$REVOCATION_FILE"
# The audit log's checkpoints are signed with a key of their own (never the root key).
AUDIT_PUB=$("$CLI" keygen --output "$WORK/audit-key.json")

# The server gets only what it needs: AppRole (the least-privilege `mcpvault`
# policy the dev stack created), not the root token.
SERVER_ENV=$(DEMO_PUB=$PUB DEMO_REV=$REVOCATION_FILE DEMO_AUDIT=$AUDIT_LOG \
  DEMO_AUDIT_KEY=$WORK/audit-key.json "$PY" -c '
import json, os
e = os.environ
print(json.dumps({
    "PATH": e.get("PATH", ""),
    "SUBJECT": "agentA",
    "MCPVAULT_PUBLIC_KEY": e["DEMO_PUB"],
    "MCPVAULT_REVOCATION_FILE": e["DEMO_REV"],
    "MCPVAULT_AUDIT_LOG": e["DEMO_AUDIT"],
    "MCPVAULT_AUDIT_KEY": e["DEMO_AUDIT_KEY"],
    "VAULT_ADDR": e["VAULT_ADDR"],
    "VAULT_ROLE_ID": e["VAULT_ROLE_ID"],
    "VAULT_SECRET_ID": e["VAULT_SECRET_ID"],
    "AWS_ENDPOINT_URL_KMS": e["AWS_ENDPOINT_URL_KMS"],
    "AWS_REGION": e["AWS_REGION"],
    "AWS_ACCESS_KEY_ID": e["AWS_ACCESS_KEY_ID"],
    "AWS_SECRET_ACCESS_KEY": e["AWS_SECRET_ACCESS_KEY"],
    "AWS_KMS_DEFAULT_KEY_ID": "alias/app",
    # The demo API listens on loopback, which http.request refuses by default.
    "MCPVAULT_HTTP_ALLOW_NETS": "127.0.0.1/32",
}))')

set +e
DEMO_SERVER_BIN=$SERVER DEMO_CLI_BIN=$CLI \
  DEMO_TOKEN=$TOKEN DEMO_TOKEN_RO=$TOKEN_RO DEMO_TOKEN_AGENTB=$TOKEN_B \
  DEMO_TOKEN_API=$TOKEN_API DEMO_API_PORT=$API_PORT DEMO_API_URL=$API_URL \
  DEMO_SERVER_ENV=$SERVER_ENV DEMO_REVOCATION_FILE=$REVOCATION_FILE \
  DEMO_AUDIT_LOG=$AUDIT_LOG DEMO_SERVER_STDERR=$WORK/server.stderr \
  DEMO_BAO_AUDIT_LOG=$BAO_AUDIT_LOG \
  "$PY" "$SCRIPT_DIR/demo_client.py"
rc=$?
set -e
if ((rc != 0)); then
  if [[ -s $WORK/server.stderr ]]; then
    heading "Last lines of the server's stderr"
    tail -n 20 "$WORK/server.stderr" | sed 's/^/  /'
  fi
fi

# The server's audit log is hash-chained: verify it, then show that editing
# one entry breaks the chain.
if ((rc == 0)) && "$CLI" audit verify --help >/dev/null 2>&1; then
  heading "Audit log hash chain (mcpvault audit verify)"
  out=$("$CLI" audit verify "$AUDIT_LOG" 2>&1) && vrc=0 || vrc=$?
  echo "  \$ mcpvault audit verify audit.jsonl -> exit $vrc: ${out:0:200}"
  if ((vrc != 0)); then
    echo "  [FAIL] the audit chain of this run verifies"
    rc=1
  fi
  out=$("$CLI" audit verify "$AUDIT_LOG" --pubkey "$AUDIT_PUB" --require-signed 2>&1) && vrc=0 || vrc=$?
  echo "  \$ mcpvault audit verify audit.jsonl --pubkey <audit key> --require-signed -> exit $vrc: ${out:0:200}"
  if ((vrc != 0)); then
    echo "  [FAIL] every entry of this run is covered by a signed checkpoint"
    rc=1
  fi
  sed '0,/"decision":"deny"/s//"decision":"allow"/' "$AUDIT_LOG" >"$WORK/audit-tampered.jsonl"
  out=$("$CLI" audit verify "$WORK/audit-tampered.jsonl" 2>&1) && vrc=0 || vrc=$?
  echo "  \$ mcpvault audit verify audit-tampered.jsonl (one deny edited to allow) -> exit $vrc: ${out:0:200}"
  if ((vrc == 0)); then
    echo "  [FAIL] an edited audit log is detected"
    rc=1
  fi
elif ((rc == 0)); then
  echo
  echo "(this mcpvault build has no \`audit verify\`: audit chain check not shown)"
fi
exit "$rc"
