#!/usr/bin/env bash
# Latency, throughput and memory figures for mcpvault-stdio against a real
# OpenBao, next to raw HTTP to the same OpenBao:
#
#   tools/bench.sh
#
# Builds release binaries (MCPVAULT_BENCH_BIN_DIR=DIR uses prebuilt ones),
# starts a private dev stack (always torn down), mints a kv.read token, seeds
# one secret, then runs tools/bench_stdio.py (raw JSON-RPC over the pipe):
#   (a) cold start spawn -> initialize reply, median of 20
#   (b) kv.read p50/p90/p99 over 2000 calls vs raw HTTP KV v2 GET (keep-alive)
#   (c) 16 concurrent clients through ONE server vs 16 raw HTTP clients
#   (d) peak RSS (VmHWM) after 10,000 calls
#   (k) kv.read on several servers and the raw floor called in turn (this build with
#       the audit log on stderr, `always` and `batch`; an earlier build's binaries
#       beside it with MCPVAULT_BENCH_BEFORE_BIN_DIR=DIR), with each server's CPU per call
#       (/proc, user + system), and their 16-client throughput
# tools/bench_leases.py: (g) db.issue_creds through a new token (child token
# created) vs a known one (cached), alternated; and
# tools/bench_sdk.py: (f) the official MCP Python SDK, measured as
# ../shared/peers.md measured the peers. Token verification alone is
# `cargo bench -p mcpvault-token --bench verify` (criterion; not run here).
# tools/bench_http.py: (j) mcpvault-http (streamable HTTP at /mcp) with 1,000
# sessions (2025-11-25) and 1,000 stateless clients (2026-07-28) open at once,
# 5 kv.read each: p50/p99 per call, throughput, errors, server RSS per session,
# next to mcpvault-stdio alternated call by call in the same run.
#
# Only some sections: MCPVAULT_BENCH_ONLY=LETTERS (e.g. `j`, or `abcd,j`; a-d
# are one script, h and i another). The load bench alone, reusing binaries:
#
#   MCPVAULT_BENCH_ONLY=j MCPVAULT_BENCH_BIN_DIR=target/release tools/bench.sh
#
# (j) settings: MCPVAULT_BENCH_HTTP_CLIENTS (1000), MCPVAULT_BENCH_HTTP_CALLS (5),
# MCPVAULT_BENCH_HTTP_SUBJECTS (100), MCPVAULT_BENCH_HTTP_SECTIONS (j0,j1,j2).
#
# The server and the raw HTTP baseline use the same OpenBao token, logged in
# through the dev stack's AppRole (its least-privilege `mcpvault` policy), so
# both pay the same ACL check (MCPVAULT_BENCH_VAULT_AUTH=approle gives the
# server the AppRole credentials instead, so cold start includes its login). The per-token and per-subject rate
# limits are disabled (MCPVAULT_RATE_LIMIT=0, MCPVAULT_SUBJECT_RATE_LIMIT=0):
# the defaults (1000/s per token) would otherwise be what is measured. The
# audit log goes to a file, as in production. Loopback only; every loop is
# bounded; the whole run is capped by MCPVAULT_BENCH_TIMEOUT (1800 s).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO"

# shellcheck source-path=SCRIPTDIR source=venv_default.sh
. "$SCRIPT_DIR/venv_default.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"
use_project_venv "$REPO"
say() { printf '[bench] %s\n' "$*" >&2; }
die() {
  printf '[bench] ERROR: %s\n' "$*" >&2
  exit 1
}
# want LETTERS: whether any of these sections runs (all of them without
# MCPVAULT_BENCH_ONLY).
want() {
  local only=${MCPVAULT_BENCH_ONLY-} i
  [[ -z $only ]] && return 0
  for ((i = 0; i < ${#1}; i++)); do
    [[ $only == *"${1:i:1}"* ]] && return 0
  done
  return 1
}

# The stack's lifecycle (temp dir, trap, up, down) is tools/lib.sh's.
DEVSTACK_KEEP=${MCPVAULT_BENCH_KEEP:-0}
DEVSTACK_QUIET_DOWN=1
devstack_begin bench

devstack_install

if [[ -n ${MCPVAULT_BENCH_BIN_DIR-} ]]; then
  BIN_DIR=$MCPVAULT_BENCH_BIN_DIR
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

KEY=$WORK/root.json
PUB=$("$CLI" keygen --output "$KEY" 2>/dev/null)
TOKEN=$("$CLI" mint --key "$KEY" --subject agentA --tools kv.read --resource 'kv:bench/*' --reveal 'kv:bench/*' --ttl 3600)
KV_PATH=bench/x

# A Vault token from the same AppRole for the raw HTTP baseline; seed the secret.
APP_TOKEN=$(curl -sSf -X POST "$VAULT_ADDR/v1/auth/approle/login" \
  --data "{\"role_id\":\"$VAULT_ROLE_ID\",\"secret_id\":\"$VAULT_SECRET_ID\"}" |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["auth"]["client_token"])')
curl -sSf -X POST -H "X-Vault-Token: $APP_TOKEN" -H 'Content-Type: application/json' \
  "$VAULT_ADDR/v1/secret/data/mcp/agentA/$KV_PATH" \
  --data '{"data":{"username":"bench","password":"not-a-real-secret"}}' >/dev/null

SERVER_ENV=$(DEMO_APP_TOKEN=$APP_TOKEN DEMO_PUB=$PUB DEMO_AUDIT=$WORK/audit.jsonl "$PY" -c '
import json, os
e = os.environ
print(json.dumps({
    "PATH": e.get("PATH", ""),
    "SUBJECT": "agentA",
    "MCPVAULT_PUBLIC_KEY": e["DEMO_PUB"],
    "MCPVAULT_AUDIT_LOG": e["DEMO_AUDIT"],
    "MCPVAULT_RATE_LIMIT": "0",
    "MCPVAULT_SUBJECT_RATE_LIMIT": "0",
    "VAULT_ADDR": e["VAULT_ADDR"],
    **({"VAULT_ROLE_ID": e["VAULT_ROLE_ID"], "VAULT_SECRET_ID": e["VAULT_SECRET_ID"]}
       if e.get("MCPVAULT_BENCH_VAULT_AUTH") == "approle" else {"VAULT_TOKEN": e["DEMO_APP_TOKEN"]}),
    "AWS_ENDPOINT_URL_KMS": e["AWS_ENDPOINT_URL_KMS"],
    "AWS_REGION": e["AWS_REGION"],
    "AWS_ACCESS_KEY_ID": e["AWS_ACCESS_KEY_ID"],
    "AWS_SECRET_ACCESS_KEY": e["AWS_SECRET_ACCESS_KEY"],
}))')

export BENCH_SERVER_BIN=$SERVER BENCH_SERVER_ENV=$SERVER_ENV BENCH_TOKEN=$TOKEN
export BENCH_KV_PATH=$KV_PATH BENCH_VAULT_TOKEN=$APP_TOKEN
export BENCH_VAULT_URL=$VAULT_ADDR/v1/secret/data/mcp/agentA/$KV_PATH
export BENCH_SERVER_STDERR=$WORK/server.stderr
export BENCH_JSON=${MCPVAULT_BENCH_JSON:-$WORK/bench.json}
export BENCH_JSON_SDK=${MCPVAULT_BENCH_JSON_SDK:-$WORK/bench-sdk.json}

BAO_VERSION=$("$BAO_BIN" version 2>/dev/null | head -n1 || echo "OpenBao ?")
echo
echo "mcpvault bench  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  machine : $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "  server  : $SERVER ($(du -h "$SERVER" | cut -f1)), rustc $(rustc --version | cut -d' ' -f2)"
echo "  backend : $BAO_VERSION at $VAULT_ADDR (dev mode, file audit device on), server auth: ${MCPVAULT_BENCH_VAULT_AUTH:-token}"
echo "  client  : $("$PY" -V), one process; token: 1 block, kv.read on kv:bench/*"

# One bench script, capped; on failure the server's last stderr lines, then stop.
run_py() {
  timeout "${MCPVAULT_BENCH_TIMEOUT:-1800}" "$PY" "$SCRIPT_DIR/$1" "${@:2}" ||
    {
      tail -n 20 "$BENCH_SERVER_STDERR" >&2 || true
      die "$* failed"
    }
  echo
}

if want abcd; then
  run_py bench_stdio.py
fi
if want k; then
  # (k): this build with the audit log on stderr (no file, no fsync), to a file with
  # `always` and with `batch`; and, with MCPVAULT_BENCH_BEFORE_BIN_DIR=DIR (binaries of
  # an earlier build), that build beside it: every server and the raw floor in turn.
  BENCH_VARIANTS=$(BEFORE=${MCPVAULT_BENCH_BEFORE_BIN_DIR-} SERVER=$SERVER "$PY" -c '
import json, os
after, before = os.environ["SERVER"], os.environ["BEFORE"]
off = {"MCPVAULT_AUDIT_LOG": None}
v = []
if before:
    v += [{"label": "before: audit on stderr", "bin": before + "/mcpvault-stdio", "env": off},
          {"label": "before: audit file, always", "bin": before + "/mcpvault-stdio",
           "env": {"MCPVAULT_AUDIT_SYNC": "always"}}]
v += [{"label": "this build: audit on stderr", "bin": after, "env": off},
      {"label": "this build: audit file, always", "bin": after, "env": {"MCPVAULT_AUDIT_SYNC": "always"}},
      {"label": "this build: audit file, batch", "bin": after, "env": {"MCPVAULT_AUDIT_SYNC": "batch"}}]
print(json.dumps(v))')
  BENCH_VARIANTS=$BENCH_VARIANTS run_py bench_stdio.py compare compare_through
fi
if want f; then
  run_py bench_sdk.py
fi
# (g) what binding leases to capability tokens costs (child token per new token).
if want g; then
  DB_TOKEN=$("$CLI" mint --key "$KEY" --subject agentA --tools 'db.*' --ttl 3600)
  LEASE_TOKENS=$(for _ in $(seq 1 21); do
    printf '%s' "$DB_TOKEN" | "$CLI" attenuate --token - --pubkey "$PUB" --ttl 3000
  done | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')
  BENCH_LEASE_TOKENS=$LEASE_TOKENS timeout "${MCPVAULT_BENCH_TIMEOUT:-1800}" \
    "$PY" "$SCRIPT_DIR/bench_leases.py" || die "bench_leases.py failed"
  echo
fi
# (h), (i): handles instead of values, and http.request against a direct request.
if want hi; then
  HANDLE_REVEAL=$("$CLI" mint --key "$KEY" --subject agentA --tools kv.read --resource 'kv:bench/*' --reveal 'kv:bench/*' --ttl 3600)
  API_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  HANDLE_SEALED=$("$CLI" mint --key "$KEY" --subject agentA --tools kv.read,http.request \
    --resource 'kv:bench/*' --resource "http:http://127.0.0.1:$API_PORT/v1/*" --ttl 3600)
  BENCH_TOKEN_REVEAL=$HANDLE_REVEAL BENCH_TOKEN_SEALED=$HANDLE_SEALED BENCH_API_PORT=$API_PORT \
    timeout "${MCPVAULT_BENCH_TIMEOUT:-1800}" "$PY" "$SCRIPT_DIR/bench_handles.py" ||
    die "bench_handles.py failed"
fi
if want abcd; then
  cat <<'EOF'
      peers (../shared/peers.md, same method): openbao-mcp 4372 ms / 53.0 ms / 156 MiB,
      claude-vault-mcp 990 ms / 4.66 ms / 78 MiB, Python echo server 38 ms / 0.29 ms / 13 MiB,
      raw HTTP floor 0.45 ms (python) - cold start / kv read p50 / peak RSS. The peers
      themselves are not installed here; their figures are quoted, not re-measured.

(e) token verification alone: cargo bench -p mcpvault-token --bench verify (criterion; run separately)
EOF
fi
# (j) mcpvault-http under load: 1,000 sessions, then 1,000 stateless clients.
if want j; then
  HTTP_BIN=$BIN_DIR/mcpvault-http
  [[ -x $HTTP_BIN ]] || die "mcpvault-http not found in $BIN_DIR"
  HTTP_CLIENTS=${MCPVAULT_BENCH_HTTP_CLIENTS:-1000}
  HTTP_SUBJECTS=${MCPVAULT_BENCH_HTTP_SUBJECTS:-100}
  # File descriptors: the client holds one socket per client, and so does the
  # server (a child of the client, so it inherits the limit); plus OpenBao's
  # connections, pipes and files. Raise the soft limit when the hard one allows.
  NEED_FDS=$((2 * HTTP_CLIENTS + 256))
  SOFT_FDS=$(ulimit -Sn)
  HARD_FDS=$(ulimit -Hn)
  if [[ $SOFT_FDS != unlimited ]] && ((SOFT_FDS < NEED_FDS)); then
    if [[ $HARD_FDS == unlimited ]] || ((HARD_FDS >= NEED_FDS)); then
      ulimit -Sn "$NEED_FDS"
    else
      die "(j) needs $NEED_FDS open files, the hard limit is $HARD_FDS (MCPVAULT_BENCH_HTTP_CLIENTS lowers it)"
    fi
  fi
  # Tokens: one per client, as each agent holds its own (a single shared token
  # would hide per-token state in the server: verification cache, rate-limit
  # bucket, revocation ids). Minted with the CLI, ~15 ms each, so ~15-30 s for
  # 1,000. They are spread over HTTP_SUBJECTS subjects, each with the secret
  # seeded in its namespace: one server serves many agents, and builds one
  # pipeline per subject. bench_http.py uses every token once before its
  # baseline, so neither subjects nor tokens count in the per-session memory;
  # 1,000 subjects would mostly measure subjects. Rate limits are off (as above).
  HTTP_TOKENS=$WORK/http-tokens
  say "(j) minting $HTTP_CLIENTS tokens over $HTTP_SUBJECTS subjects; seeding their secrets"
  for ((k = 0; k < HTTP_CLIENTS; k++)); do
    "$CLI" mint --key "$KEY" --subject "load$((k % HTTP_SUBJECTS))" --tools kv.read \
      --resource 'kv:bench/*' --reveal 'kv:bench/*' --ttl 3600
  done >"$HTTP_TOKENS"
  for ((s = 0; s < HTTP_SUBJECTS; s++)); do
    curl -sSf -X POST -H "X-Vault-Token: $APP_TOKEN" -H 'Content-Type: application/json' \
      "$VAULT_ADDR/v1/secret/data/mcp/load$s/$KV_PATH" \
      --data '{"data":{"username":"bench","password":"not-a-real-secret"}}' >/dev/null
  done
  echo "  (j) open files: soft limit $(ulimit -Sn) (hard $HARD_FDS); audit: a file, MCPVAULT_AUDIT_SYNC default (always)"
  BENCH_HTTP_BIN=$HTTP_BIN BENCH_HTTP_TOKENS_FILE=$HTTP_TOKENS BENCH_HTTP_CLIENTS=$HTTP_CLIENTS \
    BENCH_HTTP_CALLS=${MCPVAULT_BENCH_HTTP_CALLS:-5} \
    BENCH_HTTP_SECTIONS=${MCPVAULT_BENCH_HTTP_SECTIONS:-j0,j1,j2} \
    BENCH_HTTP_STDERR=$WORK/http.stderr BENCH_JSON_HTTP=${MCPVAULT_BENCH_JSON_HTTP:-$WORK/bench-http.json} \
    timeout "${MCPVAULT_BENCH_TIMEOUT:-1800}" "$PY" "$SCRIPT_DIR/bench_http.py" ||
    {
      for f in "$WORK"/http.stderr.*; do
        if [[ -f $f ]]; then tail -n 20 "$f" >&2; fi
      done
      die "bench_http.py failed"
    }
fi
