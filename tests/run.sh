#!/usr/bin/env bash
# The project's test command (README "Test"): installs what the tests need, then runs
# formatting, lint and every test. CI (.ci/run) calls exactly this.
#
# Today the suite needs only the Rust toolchain. Tests that need external tools (npm MCP
# servers, Chromium) will be installed here into ./.test-deps and announced to cargo test
# through environment variables; without them those tests print that they were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --locked
