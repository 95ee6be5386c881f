#!/usr/bin/env bash
# Installs what `sigil bench gateway` compares against and calls, outside the repository's
# tracked files (both directories are git-ignored):
#   - the peer: the Rust `mcp-proxy` crate 0.6 into ./.bench-deps/bin/mcp-proxy
#   - the upstream: @modelcontextprotocol/server-everything into ./.test-deps (as tests/run.sh)
# Then: cargo build --release && ./target/release/sigil bench gateway
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/.bench-deps"
if [ ! -x "$root/bin/mcp-proxy" ]; then
  # Its own target dir: the peer's build must not disturb the project's.
  CARGO_TARGET_DIR="${BENCH_PEER_TARGET_DIR:-${TMPDIR:-/tmp}/sigil-bench-peer-target}" \
    nice -n 19 cargo install mcp-proxy@0.6.0 --locked --no-default-features --root "$root"
fi
deps="${SIGIL_TEST_DEPS:-$PWD/.test-deps}"
if [ ! -e "$deps/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ]; then
  # The version tests/run.sh pins.
  pin="$(grep -o '@modelcontextprotocol/server-everything@[0-9.]*' tests/run.sh | head -1)"
  npm install --no-audit --no-fund --loglevel=error --prefix "$deps" "$pin"
fi
echo "peer: $root/bin/mcp-proxy; upstream: $deps"
