#!/usr/bin/env bash
# Runs baton's main job once, for a person to watch: a local redis-server, two workers standing
# for two machines (nothing shared but Redis and a git remote), and a 3-task plan that builds a
# small multi-file program in one Claude conversation, passed between the machines after every
# task. The code goes to a branch of a local bare repository (the remote), one commit per task;
# the demo ends by showing that branch and running the program from a fresh clone of it. With
# ANTHROPIC_API_KEY set it talks to the real model; otherwise to baton's local model stand-in.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
cd "$BATON_ROOT"
ensure_redis
ensure_git
ensure_bwrap
if command -v claude >/dev/null && [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  export BATON_CLAUDE_BIN="$(command -v claude)"
else
  ensure_claude
fi
echo "==> building baton" >&2
cargo build --workspace --bins --quiet
BIN="$BATON_ROOT/target/debug"

DEMO="$BATON_ROOT/.demo/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$DEMO"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

PORT="$(free_port)"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DEMO" >"$DEMO/redis.log" 2>&1 &
pids+=($!)
export BATON_REDIS_URL="redis://127.0.0.1:$PORT"
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done
echo "redis-server on 127.0.0.1:$PORT" >&2

if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  echo "model: the real Anthropic API (ANTHROPIC_API_KEY is set)" >&2
else
  "$BIN/baton-standin" >"$DEMO/standin.addr" 2>"$DEMO/standin.log" &
  pids+=($!)
  until grep -q BATON_STANDIN_ADDR "$DEMO/standin.addr" 2>/dev/null; do sleep 0.1; done
  export ANTHROPIC_BASE_URL="http://$(cut -d= -f2 "$DEMO/standin.addr")"
  export ANTHROPIC_API_KEY="baton-demo-standin"
  echo "model: baton's local stand-in at $ANTHROPIC_BASE_URL (set ANTHROPIC_API_KEY to use the real model)" >&2
fi

# The remote: a local bare repository with one commit, as a hosted repository would be. It
# lives in a folder of its own, the one folder the workers allow local repositories in
# (--repo-allow-path; by default a worker refuses every local path).
REMOTES="$DEMO/remotes"
REMOTE="$REMOTES/remote.git"
mkdir -p "$REMOTES"
git init -q --bare --initial-branch=main "$REMOTE"
git clone -q "$REMOTE" "$DEMO/seed" 2>/dev/null
printf '# todo\nA tiny todo app, written by a baton plan.\n' >"$DEMO/seed/README.md"
git -C "$DEMO/seed" add README.md
git -C "$DEMO/seed" -c user.name=demo -c user.email=demo@localhost commit -q -m "initial commit"
git -C "$DEMO/seed" push -q origin main
python3 -c '
import json, sys
plan = json.load(open(sys.argv[1]))
plan["repo"] = {"url": sys.argv[2]}
json.dump(plan, sys.stdout)
' examples/demo-plan.json "$REMOTE" >"$DEMO/plan.json"

# Two "machines": each worker has its own workspace root, state dir and CLI config dir, and
# hands the plan back after every task, so the plan moves between them.
for w in 1 2; do
  "$BIN/baton-worker" --workspace-root "$DEMO/machine-$w/workspaces" --state-dir "$DEMO/machine-$w/state" \
    --claude-bin "$BATON_CLAUDE_BIN" --claude-config-dir "$DEMO/machine-$w/claude" --concurrency 1 \
    --max-tasks-per-hold 1 --repo-allow-path "$REMOTES" >"$DEMO/worker-$w.log" 2>&1 &
  pids+=($!)
done
echo "two workers started, as two machines (logs in $DEMO)" >&2
echo >&2

start=$(date +%s.%N)
"$BIN/baton" enqueue --wait "$DEMO/plan.json" | tee "$DEMO/events.txt"
plan="$(head -n 1 "$DEMO/events.txt")"
end=$(date +%s.%N)
echo
"$BIN/baton" status "$plan"
echo
echo "the plan's branch on the remote ($REMOTE), one commit per task:"
git --git-dir="$REMOTE" log --format='  %h %s' "baton/$plan"
git clone -q -b "baton/$plan" "$REMOTE" "$DEMO/result"
echo
echo "files on the branch, from a fresh clone in $DEMO/result:"
(cd "$DEMO/result" && git ls-files | sed 's|^|  |')
if command -v python3 >/dev/null; then
  echo
  echo "running the program it built:"
  (cd "$DEMO/result" && python3 -m unittest -q 2>&1 | tail -n 3 && python3 todo.py add "try baton" && python3 todo.py list)
fi
printf '\ndemo plan took %.1f s\n' "$(echo "$end - $start" | bc -l 2>/dev/null || python3 -c "print($end-$start)")"
