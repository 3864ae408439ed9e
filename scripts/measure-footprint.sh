#!/usr/bin/env bash
# Memory and CPU of one release process (production profile, cache on), for sizing the requests,
# limits and HPA targets in deploy/k8s and for the memory bound in docs/OPERATIONS.md. For each
# backend in BACKENDS (default: sqlite postgres; PostgreSQL comes with Redis, as Kubernetes runs
# it): idle RSS and idle CPU (millicores over IDLE seconds after start-up), then the standard
# load, each scenario in SCENARIOS for DURATION with CONCURRENCY connections over POOL
# portfolios: throughput, the server's CPU (cores busy = CPU seconds / wall seconds), CPU per
# request and its peak RSS (the kernel's VmHWM, so no spike between samples is missed).
# PostgreSQL and Redis are private instances on free loopback ports in a temporary directory,
# stopped at the end; the load comes from `portfolio-service bench run` over loopback.
#
# With CHECK=1 it fails when a figure exceeds the bound deploy/k8s/base/deployment.yaml states
# (annotations portfolio.globeco.example/measured-idle-rss, -peak-rss, -idle-cpu), the bounds
# that scripts/validate-deploy.sh checks the requests and HPA targets against and that
# docs/OPERATIONS.md quotes; scripts/test.sh runs it so.
#
#   cargo build --release -p portfolio-service && scripts/measure-footprint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-15s}"
concurrency="${CONCURRENCY:-16}"
pool="${POOL:-2000}"
# The kernel counts CPU time in clock ticks (10 ms): over 10 s one tick is 1m, fine enough for
# the 5m bound, where 5 s made a single tick the difference between 4m and 6m.
idle_s="${IDLE:-10}"
bin="${CARGO_TARGET_DIR:-target}/release/portfolio-service"
[ -x "$bin" ] || { echo "build first: cargo build --release -p portfolio-service" >&2; exit 1; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
# initdb refuses to run as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_server() {
  # The service first (it drains for 5 s), so it never sees its dependencies vanish.
  if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=
}
cleanup() {
  stop_server
  if [ -n "${pg_bin:-}" ]; then as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true; fi
  if [ -n "${redis_port:-}" ]; then redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$work"

start_postgres_and_redis() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  pg_port=$(free_port); redis_port=$(free_port)
  as_pg "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$work" >/dev/null
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$server/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
results="$work/results"

measure() { # measure BACKEND: one server on BACKEND, idle then under the standard load
  local backend=$1 port env=(PORTFOLIO_ENV=production PORTFOLIO_HOST=127.0.0.1)
  port=$(free_port)
  case "$backend" in
    sqlite) mkdir -p "$work/data"; env+=(PORTFOLIO_DATA_DIR="$work/data") ;;
    postgres) [ -n "${pg_port:-}" ] || start_postgres_and_redis
              env+=(PORTFOLIO_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
                    PORTFOLIO_REDIS_URL="redis://127.0.0.1:$redis_port") ;;
    *) echo "unknown backend $backend (sqlite, postgres)" >&2; exit 1 ;;
  esac
  env "${env[@]}" PORTFOLIO_PORT="$port" "$bin" serve >"$work/server-$backend.log" 2>&1 &
  server=$!
  until "$bin" healthcheck --url "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; do
    kill -0 "$server" 2>/dev/null || { cat "$work/server-$backend.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep 2
  local ticks0 ticks1 idle_rss idle_mcpu
  ticks0=$(cpu_ticks); sleep "$idle_s"; ticks1=$(cpu_ticks)
  idle_rss=$(( $(rss_kib) / 1024 ))
  idle_mcpu=$(( (ticks1 - ticks0) * 1000 / hz / idle_s ))
  echo "[$backend] idle: RSS $idle_rss MiB, CPU ${idle_mcpu}m (over ${idle_s} s)"
  echo "$backend idle-rss $idle_rss" >>"$results"
  echo "$backend idle-cpu $idle_mcpu" >>"$results"

  local scenario start end
  for scenario in ${SCENARIOS:-get-by-id search-page mixed}; do
    # Create the pool first (bench creates what the read scenarios pick from) so only the
    # measured run is timed.
    "$bin" bench run --url "http://127.0.0.1:$port" --scenario "$scenario" --requests 200 \
      --concurrency 4 --pool "$pool" >/dev/null
    ticks0=$(cpu_ticks); start=$(date +%s.%N)
    "$bin" bench run --url "http://127.0.0.1:$port" --scenario "$scenario" --duration "$duration" \
      --concurrency "$concurrency" --pool "$pool" --warmup 0 >"$work/run.json"
    end=$(date +%s.%N); ticks1=$(cpu_ticks)
    python3 - "$work/run.json" "$backend" "$scenario" "$(( ticks1 - ticks0 ))" "$hz" "$start" "$end" "$(hwm_kib)" <<'PY'
import json, sys
run_file, backend, scenario, ticks, hz, start, end, peak = sys.argv[1:]
text = open(run_file).read()
level = json.loads(text[text.index("{"):])
cpu = int(ticks) / int(hz)
cores = cpu / (float(end) - float(start))
print(f"[{backend}] {scenario}: {level['throughput_rps']:,.0f} req/s (p99 {level['latency_ms']['p99']:.2f} ms, "
      f"{level['errors']} errors), {cores:.2f} cores busy, "
      f"{cpu / max(level['requests'], 1) * 1e6:.0f} µs CPU per request, peak RSS so far {int(peak) // 1024} MiB")
PY
  done
  local peak=$(( $(hwm_kib) / 1024 ))
  echo "[$backend] after the standard load: RSS $(( $(rss_kib) / 1024 )) MiB, peak $peak MiB"
  echo "$backend peak-rss $peak" >>"$results"
  stop_server
}

for backend in ${BACKENDS:-sqlite postgres}; do measure "$backend"; done

if [ "${CHECK:-0}" = 1 ]; then
  python3 - "$results" deploy/k8s/base/deployment.yaml <<'PY'
import re, sys
results, manifest = sys.argv[1], sys.argv[2]
text = open(manifest).read()
bounds = {m.group(1): int(m.group(2)) for m in
          re.finditer(r"portfolio\.globeco\.example/measured-([a-z-]+): (\d+)(?:Mi|m)\b", text)}
failures = []
for line in open(results):
    backend, figure, value = line.split()
    unit = "m" if figure.endswith("cpu") else " MiB"
    if int(value) > bounds[figure]:
        failures.append(f"{backend} {figure}: measured {value}{unit}, above the stated {bounds[figure]}{unit}")
    else:
        print(f"{backend} {figure}: {value}{unit} within the stated {bounds[figure]}{unit}")
if failures:
    sys.exit(f"measure-footprint: above the bounds in {manifest}:\n  " + "\n  ".join(failures))
PY
fi
