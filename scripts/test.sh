#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with the Rust toolchain.
#
# Provisions what the tests talk to, idempotently: PostgreSQL (an already running server is used
# as it is; otherwise the Debian package is installed if missing and the cluster started) and the
# redis-server binary (tests start private Redis servers on free ports, so they can kill and
# restart them), and a MongoDB wire-protocol server (scripts/provision-mongo.sh: a running one,
# a local mongod, or the secantus-mdb surrogate built once from crates.io, about 10 minutes).
# Then: formatting, lints, and every test of the workspace. Nothing is skipped: a test whose
# server cannot be reached fails.
# Last, the container image and rollouts: Docker (docker.io, dockerd started when not running),
# debootstrap and HAProxy from Debian; the image is built without a registry
# (scripts/build-image.sh, base root file system cached under ~/.cache/portfolio-service), run
# as Kubernetes runs it, three replicas are rolled and scaled under load, blue-green switches
# run under load (scripts/containers/), and the release binary's memory and CPU are measured
# against the bounds deploy/k8s states (scripts/measure-footprint.sh). Between the image and the
# rollouts, the performance gate: the release binary under a few seconds of each benchmark
# scenario, failing on a crossed threshold (scripts/perf-gate.sh). A Docker engine that cannot be
# started fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

ensure_postgres() {
  if command -v pg_isready >/dev/null && postgres_up; then
    log "PostgreSQL: already running on 127.0.0.1:5432"
    return
  fi
  if ! ls /etc/postgresql/*/main/postgresql.conf >/dev/null 2>&1; then
    log "PostgreSQL: installing the Debian package"
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "PostgreSQL: starting cluster $version/main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for 60 postgres_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
  # A fresh cluster authenticates TCP clients by password; give the test user a known one.
  as_root runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
}

ensure_redis_server() {
  if command -v redis-server >/dev/null; then
    log "Redis: $(redis-server --version | cut -d' ' -f1-3)"
    return
  fi
  log "Redis: installing the Debian package"
  apt_install redis-server
}

ensure_postgres
ensure_redis_server
export PORTFOLIO_TEST_POSTGRES_URL="${PORTFOLIO_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
export PORTFOLIO_TEST_MONGO_URL="${PORTFOLIO_TEST_MONGO_URL:-mongodb://127.0.0.1:27017}"
log "MongoDB"
bash scripts/provision-mongo.sh

bash scripts/validate-deploy.sh

# Lean debug info keeps a clean CI build fast and the target directory small.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo machete (no unused dependencies; true false positives are listed in each Cargo.toml)"
command -v cargo-machete >/dev/null || cargo install --locked cargo-machete
cargo machete

log "cargo test (workspace; the HTTP suite on SQLite)"
cargo test --workspace --locked

log "cargo deny (licenses, bans, sources; advisories when the RustSec database can be fetched)"
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
if timeout 60 cargo deny fetch db >/dev/null 2>&1; then
  cargo deny check advisories licenses bans sources
else
  cargo deny check licenses bans sources
  echo "WARNING: the RustSec advisory database could not be fetched (GitHub unreachable):" \
    "advisories were NOT checked; run 'cargo deny check advisories' where GitHub is reachable" >&2
fi

log "HTTP fuzzing: a short schemathesis run (the 10,000-request run is scripts/fuzz-http.sh)"
FUZZ_EXAMPLES=20 FUZZ_MIN_REQUESTS=500 bash scripts/fuzz-http.sh

log "the HTTP suite again, on MongoDB (a fresh database per test)"
PORTFOLIO_TEST_BACKEND=mongo cargo test --locked -p pfs-app --test api

log "the HTTP suite again, on PostgreSQL with Redis, as production runs (a fresh schema per test)"
redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --pidfile "/tmp/portfolio-test-redis-$redis_port.pid" >/dev/null
trap 'kill "$(cat "/tmp/portfolio-test-redis-$redis_port.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
wait_for 10 redis-cli -p "$redis_port" ping
PORTFOLIO_TEST_BACKEND=postgres PORTFOLIO_TEST_REDIS_URL="redis://127.0.0.1:$redis_port" \
  cargo test --locked -p pfs-app --test api

ensure_docker() {
  command -v dockerd >/dev/null || { log "Docker: installing docker.io"; apt_install docker.io; }
  if docker info >/dev/null 2>&1; then return; fi
  log "Docker: starting dockerd"
  as_root sh -c 'nohup dockerd >/var/log/portfolio-dockerd.log 2>&1 &'
  if ! wait_for 60 docker info; then
    as_root tail -n 20 /var/log/portfolio-dockerd.log >&2 || true
    echo "dockerd did not start: the container tests cannot run" >&2
    exit 1
  fi
}

ensure_container_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v haproxy >/dev/null || missing+=(haproxy)
  if [ ${#missing[@]} -gt 0 ]; then log "installing ${missing[*]}"; apt_install "${missing[@]}"; fi
}

log "container image: built without a registry (scripts/build-image.sh)"
ensure_docker
ensure_container_tools
bash scripts/build-image.sh

# After the image, whose build made the release binary this gate loads.
log "performance gate: bench run --check against the release binary (scripts/perf-gate.sh)"
bash scripts/perf-gate.sh

log "container image: run as Kubernetes runs it (embedded default; PostgreSQL + Redis, two replicas)"
python3 scripts/containers/image_test.py

log "rolling updates and scale-out under load (PostgreSQL + Redis, HAProxy as the Service)"
# The venv scripts/validate-deploy.sh made has PyYAML, to read the rendered manifests' timings.
"${PORTFOLIO_DEPLOY_VENV:-$HOME/.cache/portfolio-service/deploy-venv}/bin/python" scripts/containers/rollout_test.py

log "blue-green switches under load: switch, rollback, a broken release rolled back (HAProxy as the Service)"
"${PORTFOLIO_DEPLOY_VENV:-$HOME/.cache/portfolio-service/deploy-venv}/bin/python" scripts/containers/blue_green_test.py

log "memory and CPU of the release binary within the bounds deploy/k8s states (SQLite; PostgreSQL + Redis)"
CHECK=1 bash scripts/measure-footprint.sh
