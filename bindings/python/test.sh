#!/usr/bin/env bash
# Builds the Python extension into the project venv and runs its pytest suite.
#
#   bindings/python/test.sh [pytest args]
#
# Venv: ${MCPVAULT_VENV:-<repo>/.venv} (created if missing; maturin, fastapi,
# httpx and pytest installed into it if missing). CARGO_TARGET_DIR is honoured.
# The tests drive the Rust CLI, so `cargo build --bin mcpvault` runs first.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${MCPVAULT_VENV:-$REPO/.venv}
PY=$VENV/bin/python

if [[ ! -x $PY ]]; then
  echo "python bindings: creating venv $VENV" >&2
  python3 -m venv "$VENV"
fi
if ! "$PY" -c 'import fastapi, httpx, pytest' 2>/dev/null || [[ ! -x $VENV/bin/maturin ]]; then
  echo "python bindings: pip install maturin fastapi httpx pytest" >&2
  "$PY" -m pip install --quiet 'maturin>=1.9.4' 'fastapi>=0.100' httpx pytest
fi

(cd "$REPO" && cargo build --quiet -p mcpvault --bin mcpvault)
echo "python bindings: maturin develop" >&2
(cd "$HERE" && VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH "$VENV/bin/maturin" develop --quiet)
cd "$HERE"
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
