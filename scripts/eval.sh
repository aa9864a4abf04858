#!/usr/bin/env bash
# Runs `baton eval` from a fresh clone: installs what it needs (redis-server, git, bubblewrap,
# the pinned Claude CLI, npm and Python's venv for the toolchains), builds baton, and runs the
# suite in eval/ through a pool it starts itself. Offline (the model stand-in) unless
# ANTHROPIC_API_KEY is set; arguments go to `baton eval` (see `baton eval --help`), e.g.
#   scripts/eval.sh --arms session,isolated --repeat 3
#   scripts/eval.sh --compare .eval/A/report.json .eval/B/report.json
# It runs from the repository's root: relative paths (--out, --compare, --suite) are taken from
# there.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
cd "$BATON_ROOT"
ensure_redis
ensure_git
ensure_bwrap
ensure_eval_prereqs
if command -v claude >/dev/null && [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  export BATON_CLAUDE_BIN="${BATON_CLAUDE_BIN:-$(command -v claude)}"
else
  ensure_claude
fi
echo "==> building baton" >&2
cargo build --workspace --bins --quiet
exec "$BATON_ROOT/target/debug/baton" eval "$@"
