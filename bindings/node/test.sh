#!/usr/bin/env bash
# Builds the Node addon and runs its `node --test` suite (TAP output, so the
# closing `# pass N` / `# fail N` lines can be read by tools/test.sh).
#
#   bindings/node/test.sh
#
# The addon is built with plain `cargo build -p mcpvault-node` and copied to
# the name napi's loader (index.js) looks for: that shares the target dir with
# every other cargo build (`napi build` passes --target, which makes a second
# tree of the whole dependency graph). `npm run build` is the packaging build.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET == /* ]] || TARGET=$REPO/$TARGET

command -v node >/dev/null 2>&1 || {
  echo "node bindings: node not found (Node >= 18 needed)" >&2
  exit 1
}
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) NODE_FILE=mcpvault.linux-x64-gnu.node ;;
  Linux-aarch64) NODE_FILE=mcpvault.linux-arm64-gnu.node ;;
  *)
    echo "node bindings: no quick build for $(uname -s)-$(uname -m); use npm run build" >&2
    exit 1
    ;;
esac

cd "$HERE"
# `npm ci` fails here (the lockfile lacks other platforms' optional packages).
echo "node bindings: npm install (first time needs the npm registry)" >&2
npm install --no-audit --no-fund --loglevel=error >&2
echo "node bindings: cargo build -p mcpvault-node (first time ~1-2 min, then seconds)" >&2
(cd "$REPO" && cargo build --quiet -p mcpvault --bin mcpvault && cargo build --quiet -p mcpvault-node)
cp "$TARGET/debug/libmcpvault_node.so" "$HERE/$NODE_FILE"
exec node --test --test-reporter=tap test/
