#!/usr/bin/env bash
# Runs the benchmark (tests/src/bin/bench.rs): builds everything in release mode, then measures
# plan latency against `claude -p --resume` run by hand, queue overhead, throughput through the
# real CLI, queue-only throughput, scale, and Redis commands per task, all in one run, and
# prints the tables of docs/BENCHMARKS.md. Starts its own redis-server and model stand-in. The
# queue section runs BullMQ (installed pinned into .tools/bullmq) on the same redis-server.
# Arguments go to the benchmark: `--only <section>` (latency, overhead, throughput, queue, git,
# scale, commands, dashboard, recovery, growth, sandbox), `--warm-plans N` / `--cold-plans N` (CLI throughput sizes; defaults 20 and 8),
# `--full` (the issue's 200 plans in both modes: about half an hour on 2 cores), `--worker-threads N`
# (the queue and throughput sections also run baton's workers with `--threads N`, interleaved
# with the default, and print the ratios), `--rounds N` (rounds of those comparisons; default 2).
set -euo pipefail
. "$(dirname "$0")/setup.sh"
cd "$BATON_ROOT"
ensure_redis
ensure_git
ensure_bwrap
ensure_claude
ensure_chromium
ensure_bullmq
echo "==> cargo build --release --workspace --bins" >&2
cargo build --release --workspace --bins --quiet
exec "$BATON_ROOT/target/release/baton-bench" "$@"
