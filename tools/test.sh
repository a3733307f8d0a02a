#!/usr/bin/env bash
# The one command that sets up and runs every mcpvault test on a fresh machine:
#
#   tools/test.sh
#
# 1. makes sure rustfmt and clippy are installed (rustup component add),
# 2. installs the dev stack's venv (tools/devstack.sh install: OpenBao,
#    PostgreSQL, moto, the MCP Python SDK; ${MCPVAULT_VENV:-$REPO/.venv}),
# 3. starts a private dev stack in a fresh temp dir (always torn down on exit)
#    and exports MCPVAULT_DEVSTACK_ENV for the tests,
# 4. runs cargo fmt --check, cargo clippy --all-targets -D warnings (the whole
#    workspace, so the binding crates are linted too), cargo test --all-targets
#    and cargo test --doc over the workspace: the server and CLI (root package)
#    and the token core (crates/mcpvault-token, its own tests and bench). The
#    binding crates are excluded: they are cdylibs with no cargo tests (step 5),
# 5. runs the binding suites when their directories exist (bindings/python:
#    pytest, bindings/node: node --test); a directory that exists is always
#    tested, never skipped,
# 6. prints each step's status and `mcpvault: N passed, M failed`.
#
# Every step runs even when an earlier one failed, so one run shows all
# problems; the exit status is non-zero when anything failed.
#
# Environment: CARGO_TARGET_DIR and MCPVAULT_VENV are honoured (.ci/run points
# them at caches outside the clone). MCPVAULT_TEST_KEEP_STACK=1 keeps the
# stack's state dir (logs) after the run.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO"

# shellcheck source-path=SCRIPTDIR source=venv_default.sh
. "$SCRIPT_DIR/venv_default.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"
use_project_venv "$REPO"

say() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
  printf 'tools/test.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

# The stack's lifecycle (temp dir, trap, up, down) is tools/lib.sh's.
DEVSTACK_KEEP=${MCPVAULT_TEST_KEEP_STACK:-0}
devstack_begin test

# ------------------------------------------------------------------ steps --

declare -a STEP_NAMES=() STEP_STATUS=()
FAILED_STEPS=()

# step NAME CMD...: run CMD with its output going to the terminal and to
# $WORK/<n>.log; record ok/FAILED; never aborts the script.
step() {
  local name=$1 n=${#STEP_NAMES[@]} rc=0
  shift
  say "$name"
  set +e
  "$@" 2>&1 | tee "$WORK/step$n.log"
  rc=${PIPESTATUS[0]}
  set -e
  STEP_NAMES+=("$name")
  if ((rc == 0)); then
    STEP_STATUS+=("ok")
  else
    STEP_STATUS+=("FAILED (exit $rc)")
    FAILED_STEPS+=("$name")
  fi
  LAST_LOG=$WORK/step$n.log
  return 0
}

# ----------------------------------------------------------- toolchain ----

command -v cargo >/dev/null 2>&1 ||
  die "cargo not found: install Rust (https://rustup.rs) and re-run"

say "toolchain: $(rustc --version 2>/dev/null || echo 'rustc ?'), $(cargo --version)"
missing=()
cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
if ((${#missing[@]})); then
  command -v rustup >/dev/null 2>&1 ||
    die "${missing[*]} missing and rustup not found: install them for your toolchain"
  say "rustup component add ${missing[*]}"
  rustup component add "${missing[@]}"
fi
note "$(cargo fmt --version), $(cargo clippy --version)"

# ---------------------------------------------------------- dev stack -----

say "dev stack: install venv ($VENV)"
devstack_install

say "dev stack: up in $STATE (OpenBao, PostgreSQL, moto; usually 10-30 s)"
devstack_up
note "MCPVAULT_DEVSTACK_ENV=$MCPVAULT_DEVSTACK_ENV"

# ------------------------------------------------------------- cargo ------

step "cargo fmt --check" cargo fmt --all --check
note "clippy and the test build compile the whole dependency graph the first time"
note "(~3-5 min each on 2 cores; with a warm CARGO_TARGET_DIR, seconds)"
step "cargo clippy --workspace --all-targets -- -D warnings" cargo clippy --workspace --all-targets -- -D warnings
# --workspace: the root is a package, so without it only the root package's tests
# would run, not the token core's (crates/mcpvault-token/tests).
NO_BINDINGS=(--workspace --exclude mcpvault-python --exclude mcpvault-node)
step "cargo test --all-targets" cargo test "${NO_BINDINGS[@]}" --all-targets --no-fail-fast
TEST_LOG=$LAST_LOG
step "cargo test --doc" cargo test "${NO_BINDINGS[@]}" --doc --no-fail-fast
DOC_LOG=$LAST_LOG

# "test result: ok. 12 passed; 0 failed; 1 ignored; ..." -> sums.
sum_results() {
  awk '/^test result: / {
         n = split($0, w, /[ ;.]+/)
         for (i = 2; i <= n; i++) {
           if (w[i] == "passed") p += w[i - 1]
           if (w[i] == "failed") f += w[i - 1]
           if (w[i] == "ignored") g += w[i - 1]
         }
       }
       END { printf "%d %d %d\n", p, f, g }' "$@"
}
read -r CARGO_PASSED CARGO_FAILED CARGO_IGNORED < <(sum_results "$TEST_LOG" "$DOC_LOG")
FAILED_TESTS=$(grep -hE '^test .* \.\.\. FAILED$' "$TEST_LOG" "$DOC_LOG" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' || true)
IGNORED_TESTS=$(grep -hE '^test .* \.\.\. ignored' "$TEST_LOG" "$DOC_LOG" | sed -E 's/^test (.*) \.\.\. ignored.*/\1/' || true)

# -------------------------------------------------------- extra suites ----

EXTRA_PASSED=0 EXTRA_FAILED=0
declare -a EXTRA_LINES=()

# pytest's last line: "5 passed, 1 failed, 2 skipped in 0.31s" (maybe within ====).
pytest_counts() {
  local line
  line=$(grep -E '([0-9]+ (passed|failed|errors?)|no tests ran).* in [0-9.]+s' "$1" | tail -n1 || true)
  awk -v s="$line" 'BEGIN {
    n = split(s, w, /[ ,]+/); p = 0; f = 0
    for (i = 2; i <= n; i++) {
      if (w[i] ~ /^passed/) p += w[i - 1]
      if (w[i] ~ /^(failed|errors?)/) f += w[i - 1]
    }
    printf "%d %d\n", p, f }'
}

run_python_bindings() {
  local dir=$REPO/bindings/python
  # A suite may bring its own runner; otherwise build the extension into the
  # venv with maturin and run pytest on the directory.
  if [[ -x $dir/test.sh ]]; then
    VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH "$dir/test.sh"
    return
  fi
  "$PY" -m pip install --quiet -c "$SCRIPT_DIR/requirements-devstack.txt" 'maturin>=1.9.4,<2' pytest
  local extras=()
  # The package's `test` extra (pytest plugins, fastapi, ...) when it declares one.
  if grep -qE '^[[:space:]]*test[[:space:]]*=' "$dir/pyproject.toml" 2>/dev/null; then
    extras=(--extras test)
  fi
  (cd "$dir" && VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH "$VENV/bin/maturin" develop "${extras[@]}")
  (cd "$dir" && "$PY" -m pytest -q)
}

run_node_bindings() {
  local dir=$REPO/bindings/node
  if [[ -x $dir/test.sh ]]; then
    "$dir/test.sh"
    return
  fi
  command -v node >/dev/null 2>&1 || {
    echo "node not found: bindings/node exists but cannot be tested"
    return 1
  }
  (
    cd "$dir"
    # `npm ci` fails here (the lockfile lacks other platforms' optional packages).
    if [[ -f package.json ]]; then
      npm install --no-audit --no-fund
      if node -e 'process.exit(require("./package.json").scripts?.build ? 0 : 1)'; then
        npm run build
      fi
    fi
    node --test
  )
}

# A suite whose directory exists but that reported no test at all (or output
# we could not read) counts as failed: it must never pass silently.
no_tests_is_failure() {
  local name=$1 p=$2 f=$3
  if ((p + f == 0)) && [[ ${STEP_STATUS[-1]} == ok ]]; then
    STEP_STATUS[-1]="FAILED (no test results found in its output)"
    FAILED_STEPS+=("$name: no tests")
  fi
}

if [[ -d $REPO/bindings/python ]]; then
  step "python bindings (bindings/python: pytest)" run_python_bindings
  read -r p f < <(pytest_counts "$LAST_LOG")
  no_tests_is_failure "python bindings" "$p" "$f"
  EXTRA_PASSED=$((EXTRA_PASSED + p)) EXTRA_FAILED=$((EXTRA_FAILED + f))
  EXTRA_LINES+=("python bindings: ran pytest, $p passed, $f failed (${STEP_STATUS[-1]})")
else
  EXTRA_LINES+=("python bindings: bindings/python does not exist, nothing to run")
fi
if [[ -d $REPO/bindings/node ]]; then
  step "node bindings (bindings/node: node --test)" run_node_bindings
  # node --test ends with "# pass N" / "# fail N".
  p=$(awk '/^# pass / {v = $3} END {print v + 0}' "$LAST_LOG")
  f=$(awk '/^# fail / {v = $3} END {print v + 0}' "$LAST_LOG")
  no_tests_is_failure "node bindings" "$p" "$f"
  EXTRA_PASSED=$((EXTRA_PASSED + p)) EXTRA_FAILED=$((EXTRA_FAILED + f))
  EXTRA_LINES+=("node bindings: ran node --test, $p passed, $f failed (${STEP_STATUS[-1]})")
else
  EXTRA_LINES+=("node bindings: bindings/node does not exist, nothing to run")
fi

# ------------------------------------------------------------- summary ----

# Down before the summary so the summary line is the last thing printed.
devstack_down
say "summary"
ELAPSED=$SECONDS
echo "cargo test summary lines:"
grep -hE '^\s*(Running|Doc-tests) |^test result: ' "$TEST_LOG" "$DOC_LOG" | sed 's/^ */  /' || true
echo
for i in "${!STEP_NAMES[@]}"; do
  printf '  %-56s %s\n' "${STEP_NAMES[i]}" "${STEP_STATUS[i]}"
done
for l in "${EXTRA_LINES[@]}"; do echo "  $l"; done
if [[ -n $FAILED_TESTS ]]; then
  echo "failed tests:"
  while IFS= read -r t; do echo "  $t"; done <<<"$FAILED_TESTS"
fi
if ((CARGO_IGNORED)); then
  echo "ignored tests ($CARGO_IGNORED; cargo does not run them):"
  while IFS= read -r t; do echo "  $t"; done <<<"$IGNORED_TESTS"
fi

TOTAL_PASSED=$((CARGO_PASSED + EXTRA_PASSED))
TOTAL_FAILED=$((CARGO_FAILED + EXTRA_FAILED))
line="mcpvault: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
if ((EXTRA_PASSED + EXTRA_FAILED)); then
  line+=" (cargo $CARGO_PASSED/$CARGO_FAILED, bindings $EXTRA_PASSED/$EXTRA_FAILED)"
fi
if ((${#FAILED_STEPS[@]})); then
  line+="; FAILED: ${FAILED_STEPS[0]}"
  for s in "${FAILED_STEPS[@]:1}"; do line+=", $s"; done
fi
printf '  wall time: %dm%02ds\n' $((ELAPSED / 60)) $((ELAPSED % 60))
echo
echo "$line"
((${#FAILED_STEPS[@]} == 0 && TOTAL_FAILED == 0))
