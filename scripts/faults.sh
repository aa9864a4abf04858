#!/usr/bin/env bash
# Runs the fault suite at full size (50 plans x 5 tasks per scenario, 3 workers, the real CLI
# against the stand-in) and prints its table. Takes a while (about half an hour on 2 cores).
# Arguments: scenario name filters (e.g. `redis`), or --ci for the CI size.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
cd "$BATON_ROOT"
ensure_redis
ensure_git
ensure_bwrap
ensure_claude
cargo build --workspace --bins --quiet
exec "$BATON_ROOT/target/debug/fault-suite" "$@"
