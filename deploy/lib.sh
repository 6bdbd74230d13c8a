# Shared checks for the deploy scripts. Sourced, not run.

die() { echo "error: $*" >&2; exit 1; }

# apt packages: install when missing and we are root on Debian/Ubuntu,
# otherwise say what is missing.
need_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "could not install ${missing[*]}"
  else
    die "missing system packages: ${missing[*]} (install them with your package manager)"
  fi
}

need_toolchain() {
  command -v cargo >/dev/null || die "no Rust toolchain: install Rust 1.89 or newer (https://rustup.rs), then run this again"
  if command -v dpkg-query >/dev/null; then
    need_apt gcc libc6-dev
  else
    command -v cc >/dev/null || die "no C compiler (cc): install gcc or clang"
  fi
  local v
  v=$(rustc --version | awk '{print $2}')
  case "$v" in
    1.[0-7][0-9].*|1.8[0-8].*) die "Rust $v is too old: AURA needs 1.89 or newer (rustup update)";;
  esac
}

need_components() {
  for c in rustfmt clippy; do
    if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
      if command -v rustup >/dev/null; then
        rustup component add "$c" || die "could not add the $c component (rustup component add $c)"
      else
        die "the $c component is missing (rustup component add $c)"
      fi
    fi
  done
}

# A command-line tool from PyPI, pinned, in a virtualenv of its own under
# target/ so that nothing is installed system-wide. Prints the path of
# its executable. Usage: pip_tool VENV "package==version ..." EXECUTABLE
pip_tool() {
  local venv=target/$1 requirement=$2 executable=$3
  command -v python3 >/dev/null || die "python3 is needed for $requirement (install python3 and python3-venv)"
  if [ ! -x "$venv/bin/$executable" ]; then
    python3 -m venv "$venv" 2>/dev/null || { command -v dpkg-query >/dev/null && need_apt python3-venv >&2 && python3 -m venv "$venv"; } \
      || die "cannot create a Python virtualenv (install python3-venv)"
    # shellcheck disable=SC2086 # one word per requirement
    "$venv/bin/pip" install -q --disable-pip-version-check $requirement >&2 \
      || die "cannot install $requirement from PyPI"
  fi
  echo "$venv/bin/$executable"
}

need_openapi_validator() {
  OPENAPI_VALIDATOR=$(pip_tool openapi-venv "openapi-spec-validator==0.9.0" openapi-spec-validator)
}

need_schemathesis() {
  SCHEMATHESIS=$(pip_tool schemathesis-venv "schemathesis==4.32.5" schemathesis)
}

# openapi-python-client, with what its generated client and the test that
# drives it need (an Ed25519 key for the agent comes from cryptography).
need_openapi_client() {
  OPENAPI_CLIENT=$(pip_tool openapi-client-venv \
    "openapi-python-client==0.29.1 cryptography==46.0.3" openapi-python-client)
  OPENAPI_CLIENT_PYTHON=$(dirname "$OPENAPI_CLIENT")/python
}

# Starts `aura serve` with embedded defaults on free loopback ports, in a
# fresh directory AURA_WORK (removed on exit), and waits until it is
# ready. Sets AURA_BASE (its URL) and AURA_PLATFORM_KEY (the bootstrap
# platform key). Tools on 127.0.0.1 are allowed (the callers' own listen
# there); every other reserved destination is refused as in production.
# Arguments go to `aura serve`.
start_aura() {
  cargo build --locked --bin aura
  AURA_WORK=$(mktemp -d)
  trap 'kill "$AURA_PID" 2>/dev/null || true; wait "$AURA_PID" 2>/dev/null || true; rm -rf "$AURA_WORK"' EXIT
  local api cluster
  api=$(free_port)
  cluster=$(free_port)
  ./target/debug/aura serve --data-dir "$AURA_WORK/data" --listen "127.0.0.1:$api" \
    --cluster-listen "127.0.0.1:$cluster" --egress-allow 127.0.0.1 "$@" >"$AURA_WORK/serve.log" 2>&1 &
  AURA_PID=$!
  AURA_BASE="http://127.0.0.1:$api"
  for _ in $(seq 300); do
    python3 - "$AURA_BASE/readyz" <<'PY' 2>/dev/null && break
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1)
PY
    kill -0 "$AURA_PID" 2>/dev/null || { cat "$AURA_WORK/serve.log" >&2; die "aura serve stopped before it was ready"; }
    sleep 0.1
  done
  AURA_PLATFORM_KEY=$(cat "$AURA_WORK/data/bootstrap-admin.key")
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# PostgreSQL for the SQL tests: AURA_TEST_POSTGRES_URL if set, otherwise the
# server on 127.0.0.1:5432, started (and on Debian installed) if it does
# not answer. The tests create and drop their own databases.
pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
need_postgres() {
  [ -n "${AURA_TEST_POSTGRES_URL:-}" ] && return 0
  pg_answers && return 0
  local installed=0
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    command -v dpkg-query >/dev/null || die "PostgreSQL is not running on 127.0.0.1:5432: start one, or set AURA_TEST_POSTGRES_URL"
    need_apt postgresql
    installed=1
  fi
  echo "starting PostgreSQL"
  service postgresql start >/dev/null 2>&1 \
    || for v in /etc/postgresql/*; do pg_ctlcluster "$(basename "$v")" main start; done >/dev/null 2>&1 \
    || true
  for _ in $(seq 100); do pg_answers && break; sleep 0.2; done
  pg_answers || die "PostgreSQL does not answer on 127.0.0.1:5432 and could not be started; set AURA_TEST_POSTGRES_URL"
  if [ "$installed" = 1 ]; then
    # A fresh Debian install asks for a password over TCP; give the
    # superuser one that the tests then use.
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'aura-test'\"" >/dev/null \
      || die "cannot set the PostgreSQL test password"
    export AURA_TEST_POSTGRES_URL="postgres://postgres:aura-test@127.0.0.1:5432/postgres"
  fi
}

# Redis for the gateway's shared rate limits and replay cache:
# AURA_TEST_REDIS_URL if set, otherwise the server on 127.0.0.1:6379,
# started (and on Debian installed) if it does not answer. Tests use fresh
# key names, so a shared Redis is fine.
redis_answers() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

need_redis() {
  [ -n "${AURA_TEST_REDIS_URL:-}" ] && return 0
  redis_answers && return 0
  if ! command -v redis-server >/dev/null; then
    command -v dpkg-query >/dev/null || die "Redis is not running on 127.0.0.1:6379: start one, or set AURA_TEST_REDIS_URL"
    need_apt redis-server
  fi
  echo "starting Redis"
  service redis-server start >/dev/null 2>&1 \
    || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >/dev/null 2>&1 \
    || true
  for _ in $(seq 100); do redis_answers && break; sleep 0.1; done
  redis_answers || die "Redis does not answer on 127.0.0.1:6379 and could not be started; set AURA_TEST_REDIS_URL"
}
