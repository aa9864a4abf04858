# Sourced by test.sh, demo.sh and bench.sh: installs what baton's tests and demo need and does
# not find. Everything goes through the ordinary package clients; nothing is downloaded by hand.
#   - redis-server, openssl, git and bubblewrap (the workers' sandbox): Debian packages (apt-get)
#   - chromium and chromium-driver (the tests' browser): Debian packages (apt-get)
#   - the Claude Code CLI, pinned: npm package, into .tools/ (ignored by git)
#   - redis-py and ioredis, pinned, for the example clients: into .tools/python, .tools/node
#   - npm and Python's venv, for the toolchains `baton eval` pins and installs into .tools/eval
#   - BullMQ and its ioredis, pinned, for the benchmark's comparison: into .tools/bullmq

CLAUDE_CLI_VERSION="2.1.332"
# Client libraries the examples in examples/ use; the tests run those examples with them.
PY_REDIS_VERSION="5.2.1"
IOREDIS_VERSION="5.9.3"
# The queue the benchmark's queue section compares baton with (tests/bench/bullmq-ordered.mjs);
# since 6.0 ioredis is an optional peer of BullMQ's, installed beside it at the version above.
BULLMQ_VERSION="6.7.0"
BATON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$BATON_ROOT/.tools"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    echo "==> apt-get update" >&2
    as_root apt-get update -qq >&2
    apt_updated=1
  fi
  echo "==> apt-get install $*" >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
}

ensure_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server
  fi
  # The Debian package may start a system instance; baton's scripts never use it.
  # openssl makes the TLS tests' certificates (Sentinels run as `redis-server --sentinel`).
  if ! command -v openssl >/dev/null; then
    apt_install openssl
  fi
}

# bubblewrap: the sandbox every CLI run of a worker lives in (on by default).
ensure_bwrap() {
  if ! command -v bwrap >/dev/null; then
    apt_install bubblewrap
  fi
}

ensure_git() {
  if ! command -v git >/dev/null; then
    apt_install git
  fi
}

# Headless Chromium and its WebDriver, for the dashboard's browser test.
ensure_chromium() {
  if ! command -v chromedriver >/dev/null || ! { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then
    apt_install chromium chromium-driver
  fi
}

ensure_claude() {
  local bin="$TOOLS/node_modules/.bin/claude"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^$CLAUDE_CLI_VERSION"; then
    export BATON_CLAUDE_BIN="$bin"
    return
  fi
  if ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  echo "==> npm install @anthropic-ai/claude-code@$CLAUDE_CLI_VERSION (into .tools/)" >&2
  mkdir -p "$TOOLS"
  [ -f "$TOOLS/package.json" ] || echo '{"private": true}' > "$TOOLS/package.json"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$CLAUDE_CLI_VERSION" >&2
  "$bin" --version >/dev/null
  export BATON_CLAUDE_BIN="$bin"
}

ensure_client_libs() {
  if ! PYTHONPATH="$TOOLS/python" python3 -c "import redis, sys; sys.exit(redis.__version__ != '$PY_REDIS_VERSION')" 2>/dev/null; then
    echo "==> pip install redis==$PY_REDIS_VERSION (into .tools/python)" >&2
    python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/python" "redis==$PY_REDIS_VERSION" >&2
  fi
  if ! grep -qs "\"version\": \"$IOREDIS_VERSION\"" "$TOOLS/node/node_modules/ioredis/package.json"; then
    echo "==> npm install ioredis@$IOREDIS_VERSION (into .tools/node)" >&2
    mkdir -p "$TOOLS/node"
    [ -f "$TOOLS/node/package.json" ] || echo '{"private": true}' > "$TOOLS/node/package.json"
    npm install --prefix "$TOOLS/node" --no-audit --no-fund --loglevel=error "ioredis@$IOREDIS_VERSION" >&2
  fi
}

# BullMQ for the benchmark (scripts/bench.sh), in .tools/bullmq; exports BATON_BULLMQ_DIR.
ensure_bullmq() {
  local dir="$TOOLS/bullmq"
  if ! grep -qs "\"version\": \"$BULLMQ_VERSION\"" "$dir/node_modules/bullmq/package.json" ||
    ! grep -qs "\"version\": \"$IOREDIS_VERSION\"" "$dir/node_modules/ioredis/package.json"; then
    if ! command -v npm >/dev/null; then
      apt_install nodejs npm
    fi
    echo "==> npm install bullmq@$BULLMQ_VERSION ioredis@$IOREDIS_VERSION (into .tools/bullmq)" >&2
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
      "bullmq@$BULLMQ_VERSION" "ioredis@$IOREDIS_VERSION" >&2
  fi
  export BATON_BULLMQ_DIR="$dir"
}

# What `baton eval` installs its toolchains with: npm (typescript, @types/node) and Python's
# venv (pyflakes, mypy); cargo is the one building baton. The toolchains themselves are pinned
# and installed by `baton eval` (and its tests) into .tools/eval.
ensure_eval_prereqs() {
  if ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    apt_install python3-venv
  fi
  export BATON_EVAL_TOOLS="$TOOLS/eval"
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
