#!/usr/bin/env bash
# Verify latency from Python and Node (release builds) next to the Rust figure:
#
#   bindings/bench.sh [iterations]        (default 10000)
#
# Builds a release wheel (maturin) and installs it into a temp dir (the project
# venv is left alone), builds the release addon, runs bench/verify.py and
# bench/verify.js, then the matching Rust criterion benches
# (`cargo bench --bench verify`: cached/depth1, first_sight/depth1).
# MCPVAULT_BENCH_SKIP_RUST=1 skips the Rust part.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
VENV=${MCPVAULT_VENV:-$REPO/.venv}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET == /* ]] || TARGET=$REPO/$TARGET
N=${1:-10000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcpvault-bench.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

[[ -x $VENV/bin/maturin ]] ||
  "$VENV/bin/python" -m pip install --quiet -c "$REPO/tools/requirements-devstack.txt" 'maturin>=1.9.4'
echo "==> release builds (wheel and addon; clean: several minutes on 2 cores)" >&2
(cd "$HERE/python" && VIRTUAL_ENV=$VENV "$VENV/bin/maturin" build --release --quiet --out "$WORK/wheels" >&2)
"$VENV/bin/python" -m pip install --quiet --no-deps --target "$WORK/site" "$WORK"/wheels/*.whl
(cd "$REPO" && cargo build --quiet --release -p mcpvault-node)
cp "$TARGET/release/libmcpvault_node.so" "$WORK/mcpvault.node"

echo "==> verify latency, $(uname -m), $(nproc) cores" >&2
PYTHONPATH=$WORK/site "$VENV/bin/python" "$HERE/bench/verify.py" "$N"
NAPI_RS_NATIVE_LIBRARY_PATH=$WORK/mcpvault.node node "$HERE/bench/verify.js" "$N"

if [[ ${MCPVAULT_BENCH_SKIP_RUST:-0} != 1 ]]; then
  echo "==> rust (criterion)" >&2
  (cd "$REPO" && cargo bench --quiet --bench verify -- '^(cached|first_sight)/depth1$' 2>/dev/null) |
    awk '/^[^ ]/ { name = $1 } /time:/ { sub(/.*time: */, ""); printf "rust   %-34s %s (criterion low/mid/high)\n", name, $0 }'
fi
