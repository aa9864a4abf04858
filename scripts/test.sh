#!/usr/bin/env bash
# Runs every test of baton: unit tests, and end-to-end tests that start their own redis-server
# processes, workers and model stand-in, and run the real Claude CLI. Installs redis-server and
# the pinned CLI first if they are missing. Extra arguments go to `cargo test` (e.g. a filter).
set -euo pipefail
. "$(dirname "$0")/setup.sh"
cd "$BATON_ROOT"
ensure_redis
ensure_claude
echo "==> cargo build --workspace --all-targets" >&2
cargo build --workspace --all-targets --quiet
echo "==> cargo test --workspace" >&2
cargo test --workspace "$@"
