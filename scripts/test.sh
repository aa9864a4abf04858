#!/usr/bin/env bash
# Runs every test of baton: unit tests, and end-to-end tests that start their own redis-server
# processes, workers and model stand-in, and run the real Claude CLI. Installs redis-server and
# the pinned CLI first if they are missing. The end-to-end tests whose outcome the session mode
# can change run twice: with workers in warm session mode (the default) and in cold mode (the
# script-level tests, the ingest-only tests, the in-process `harness::` tests (scripted engines,
# no CLI), `modes::`, which sets each worker's mode itself, and `eval::`, whose `baton eval`
# starts its own workers, run once). The eval's checkers are tested on real toolchains (tsc,
# pyflakes, mypy, cargo), pinned and installed into .tools/eval. Extra arguments go to
# `cargo test` (e.g. a filter), and those after a `--` to the test binaries, in both passes
# (`scripts/test.sh -- faults:: --nocapture`).
set -euo pipefail
. "$(dirname "$0")/setup.sh"
cd "$BATON_ROOT"
ensure_redis
ensure_git
ensure_bwrap
ensure_chromium
ensure_claude
ensure_client_libs
ensure_eval_prereqs
echo "==> the code's shape: sizes (scripts/size-check.py) and each crate's modules (scripts/module-check.py)" >&2
python3 scripts/size-check.py crates
python3 scripts/module-check.py
echo "==> cargo build --workspace --all-targets" >&2
cargo build --workspace --all-targets --quiet
# Arguments before a `--` go to cargo, those after it to the test binaries; the cold pass puts
# its skips after the `--` too (appending a second `--` would make every later word a filter).
cargo_args=()
test_args=()
seen_dashes=""
for a in "$@"; do
  if [ -z "$seen_dashes" ] && [ "$a" = "--" ]; then
    seen_dashes=1
  elif [ -n "$seen_dashes" ]; then
    test_args+=("$a")
  else
    cargo_args+=("$a")
  fi
done
echo "==> cargo test --workspace (workers in warm session mode)" >&2
BATON_SESSION_MODE=warm cargo test --workspace ${cargo_args[@]+"${cargo_args[@]}"} -- \
  ${test_args[@]+"${test_args[@]}"}
echo "==> end-to-end tests again, workers in cold session mode (where the mode matters)" >&2
BATON_SESSION_MODE=cold cargo test --workspace --test e2e ${cargo_args[@]+"${cargo_args[@]}"} -- \
  --skip scripts:: --skip client:: --skip harness:: --skip modes:: --skip foundation::malformed_documents \
  --skip foundation::enqueue_refuses --skip faults::hostile_documents --skip dashboard:: \
  --skip operate:: --skip clients:: --skip deploy:: --skip scale:: --skip isolation::ownership --skip eval:: \
  --skip reliability::watch_of_every_plan --skip controls::high --skip controls::pausing \
  --skip controls::not_before --skip controls::new_states --skip controls::webhooks \
  --skip traces:: --skip limits:: --skip schedules:: ${test_args[@]+"${test_args[@]}"}
