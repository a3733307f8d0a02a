#!/usr/bin/env bash
# Builds the Python extension into the project venv and runs its pytest suite.
#
#   bindings/python/test.sh [pytest args]
#
# Venv: ${MCPVAULT_VENV:-<repo>/.venv} (created if missing; maturin, fastapi,
# httpx and pytest installed into it if missing, at the versions pinned in
# tools/requirements-devstack.txt). CARGO_TARGET_DIR is honoured.
# The tests drive the Rust CLI, so `cargo build --bin mcpvault` runs first.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${MCPVAULT_VENV:-$REPO/.venv}
PY=$VENV/bin/python
# The project's pinned PyPI versions (shared with tools/devstack.sh).
CONSTRAINTS=$REPO/tools/requirements-devstack.txt

if [[ ! -x $PY ]]; then
  echo "python bindings: creating venv $VENV" >&2
  python3 -m venv "$VENV"
fi
if ! "$PY" -c 'import fastapi, httpx, pytest' 2>/dev/null || [[ ! -x $VENV/bin/maturin ]]; then
  echo "python bindings: pip install maturin fastapi httpx pytest (pinned; first time ~30 s)" >&2
  "$PY" -m pip install --quiet -c "$CONSTRAINTS" 'maturin>=1.9.4' 'fastapi>=0.100' httpx pytest
fi

echo "python bindings: cargo build --bin mcpvault" >&2
(cd "$REPO" && cargo build --quiet -p mcpvault --bin mcpvault)
echo "python bindings: maturin develop (builds the extension: first time ~1-2 min, then seconds)" >&2
(cd "$HERE" && VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH "$VENV/bin/maturin" develop --quiet)
cd "$HERE"
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
