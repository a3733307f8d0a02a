#!/usr/bin/env bash
# Smoke test of a running dev stack (tools/devstack.sh up): exercises every
# backend the way mcpvault uses it, through the AppRole token (so the
# `mcpvault` policy is checked too) wherever that policy allows.
#
#   tools/devstack-check.sh [STATE_DIR]
#
# Prints one line per check on stderr and "N passed, N failed" on stdout;
# exits non-zero when a check fails.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

ENV_FILE=$("$SCRIPT_DIR/devstack.sh" env "${1-}") || die "stack is not up"
# shellcheck disable=SC1090
. "$ENV_FILE"
PY=$DEVSTACK_PYTHON
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

passed=0 failed=0
check() {
  local name=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    log "ok   $name${out:+: $out}"
  else
    failed=$((failed + 1))
    log "FAIL $name: $out"
  fi
}

jget() {
  "$PY" -c '
import json, sys
v = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    v = v[int(part)] if isinstance(v, list) else v[part]
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# api TOKEN METHOD PATH [BODY]: body on stdout, fails on HTTP >= 400.
api() {
  local token=$1 method=$2 path=$3 body=${4-}
  local args=(-sS -f -X "$method" -H "X-Vault-Token: $token")
  [[ -z $body ]] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
  curl "${args[@]}" "$VAULT_ADDR/v1/$path"
}

APP_TOKEN=$(api "" POST auth/approle/login \
  "{\"role_id\":\"$VAULT_ROLE_ID\",\"secret_id\":\"$VAULT_SECRET_ID\"}" | jget auth.client_token)
AUDIT_LINES_BEFORE=$(wc -l <"$BAO_AUDIT_LOG")

kv_roundtrip() {
  api "$APP_TOKEN" POST secret/data/mcp/agentA/x '{"data":{"k":"v1"}}' >/dev/null
  local v
  v=$(api "$APP_TOKEN" GET secret/data/mcp/agentA/x | jget data.data.k)
  [[ $v == v1 ]] && echo "read back $v"
}
kv_denied_outside_mcp() {
  # The policy must not reach outside secret/*/mcp/.
  ! api "$APP_TOKEN" POST secret/data/other/x '{"data":{"k":"v"}}' >/dev/null 2>&1 && echo "403 as expected"
}
transit_roundtrip() {
  local ct pt
  ct=$(api "$APP_TOKEN" POST transit/encrypt/app-aes '{"plaintext":"aGVsbG8="}' | jget data.ciphertext)
  pt=$(api "$APP_TOKEN" POST transit/decrypt/app-aes "{\"ciphertext\":\"$ct\"}" | jget data.plaintext)
  [[ $pt == aGVsbG8= ]] && echo "${ct:0:12}..."
}
transit_sign_verify() {
  local sig ok
  sig=$(api "$APP_TOKEN" POST transit/sign/app-ed25519 '{"input":"aGVsbG8="}' | jget data.signature)
  ok=$(api "$APP_TOKEN" POST transit/verify/app-ed25519 "{\"input\":\"aGVsbG8=\",\"signature\":\"$sig\"}" | jget data.valid)
  [[ $ok == true ]] && echo "ed25519 valid"
}
db_creds_login() {
  local role=$1 out user pass lease who
  out=$(api "$APP_TOKEN" GET "database/creds/$role")
  user=$(jget data.username <<<"$out")
  pass=$(jget data.password <<<"$out")
  lease=$(jget lease_id <<<"$out")
  who=$(PGPASSWORD=$pass "$PG_BIN/psql" -h "$PG_HOST" -p "$PG_PORT" -U "$user" -d postgres -w -tAXc 'select current_user')
  [[ $who == "$user" ]] || return 1
  api "$APP_TOKEN" PUT sys/leases/renew "{\"lease_id\":\"$lease\"}" >/dev/null
  api "$APP_TOKEN" PUT sys/leases/revoke "{\"lease_id\":\"$lease\"}" >/dev/null
  # After revoke the role must be gone from PostgreSQL.
  ! PGPASSWORD=$pass "$PG_BIN/psql" -h "$PG_HOST" -p "$PG_PORT" -U "$user" -d postgres -w -tAXc 'select 1' >/dev/null 2>&1 &&
    echo "$user logged in, renewed, revoked"
}
ssh_ca_sign() {
  ssh-keygen -q -t ed25519 -N '' -C devstack-check -f "$WORK/id" >/dev/null
  local body
  body=$("$PY" -c 'import json,sys; print(json.dumps({"public_key": open(sys.argv[1]).read(), "valid_principals": "ubuntu"}))' "$WORK/id.pub")
  api "$APP_TOKEN" POST ssh/sign/ca-user "$body" | jget data.signed_key | sed '/^$/d' >"$WORK/id-cert.pub"
  ssh-keygen -L -f "$WORK/id-cert.pub" >"$WORK/cert.txt"
  grep -q 'ubuntu' "$WORK/cert.txt" && grep -q 'user certificate' "$WORK/cert.txt" &&
    grep -o 'Valid: .*' "$WORK/cert.txt"
}
ssh_otp() {
  local key
  key=$(api "$APP_TOKEN" POST ssh/creds/otp-role '{"ip":"127.0.0.1","username":"ubuntu"}' | jget data.key)
  [[ -n $key ]] && echo "otp issued"
}
token_self() {
  api "$APP_TOKEN" GET auth/token/lookup-self | jget data.policies
  api "$APP_TOKEN" POST auth/token/renew-self '{}' >/dev/null
}
kms_roundtrip() {
  "$PY" - <<'PY'
import os, boto3
# endpoint and region come from the env file alone (AWS_ENDPOINT_URL_KMS)
kms = boto3.client("kms")
ctx = {"tenant": "agentA"}
for key in (os.environ["KMS_KEY_ID"], "alias/app", "alias/other"):
    ct = kms.encrypt(KeyId=key, Plaintext=b"hello", EncryptionContext=ctx)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)["Plaintext"] == b"hello"
for alias, alg in (("alias/sign-ecc", "ECDSA_SHA_256"), ("alias/sign-rsa", "RSASSA_PSS_SHA_256")):
    sig = kms.sign(KeyId=alias, Message=b"m", SigningAlgorithm=alg)["Signature"]
    assert kms.verify(KeyId=alias, Message=b"m", Signature=sig, SigningAlgorithm=alg)["SignatureValid"]
print("encrypt/decrypt + ECC/RSA sign/verify")
PY
}
audit_grows() {
  local now
  now=$(wc -l <"$BAO_AUDIT_LOG")
  ((now > AUDIT_LINES_BEFORE)) && echo "$AUDIT_LINES_BEFORE -> $now lines"
}

check "kv write/read secret/data/mcp/agentA/x" kv_roundtrip
check "kv denied outside mcp/" kv_denied_outside_mcp
check "transit encrypt/decrypt app-aes" transit_roundtrip
check "transit sign/verify app-ed25519" transit_sign_verify
check "database creds readonly (psql)" db_creds_login readonly
check "database creds app (psql)" db_creds_login app
check "ssh CA sign + ssh-keygen -L" ssh_ca_sign
check "ssh OTP creds" ssh_otp
check "token lookup-self/renew-self" token_self
check "moto KMS" kms_roundtrip
check "audit log grows" audit_grows

echo "$passed passed, $failed failed"
((failed == 0))
