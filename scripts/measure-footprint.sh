#!/usr/bin/env bash
# Memory and CPU of one release process as Kubernetes runs it (production profile, PostgreSQL
# and Redis, cache on), for sizing the requests and limits in deploy/k8s/overlays: idle RSS,
# then for each load scenario the throughput, the server's CPU (cores busy = CPU seconds /
# wall seconds) and its peak RSS sampled every 200 ms. PostgreSQL and Redis are private
# instances on free loopback ports in a temporary directory, stopped at the end; the load comes
# from `portfolio-service bench run` over loopback, bounded by DURATION per scenario.
#
#   cargo build --release -p portfolio-service && scripts/measure-footprint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-15s}"
concurrency="${CONCURRENCY:-16}"
bin="${CARGO_TARGET_DIR:-target}/release/portfolio-service"
[ -x "$bin" ] || { echo "build first: cargo build --release -p portfolio-service" >&2; exit 1; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_port=$(free_port); redis_port=$(free_port); port=$(free_port)
# initdb refuses to run as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  # The service first (it drains for 5 s), so it never sees its dependencies vanish.
  if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$work"

as_pg "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --dir "$work" >/dev/null

PORTFOLIO_ENV=production PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" \
  PORTFOLIO_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres" \
  PORTFOLIO_REDIS_URL="redis://127.0.0.1:$redis_port" "$bin" serve &
server=$!
until "$bin" healthcheck --url "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; do sleep 0.1; done
sleep 2

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
echo "idle RSS: $(( $(rss_kib) / 1024 )) MiB"

for scenario in ${SCENARIOS:-get-by-id search-page mixed}; do
  # Create the pool first (bench creates what the read scenarios pick from) so only the
  # measured run is timed.
  "$bin" bench run --url "http://127.0.0.1:$port" --scenario "$scenario" --requests 200 \
    --concurrency 4 --pool "${POOL:-2000}" >/dev/null
  peak=0; ticks0=$(cpu_ticks); start=$(date +%s.%N)
  "$bin" bench run --url "http://127.0.0.1:$port" --scenario "$scenario" --duration "$duration" \
    --concurrency "$concurrency" --pool "${POOL:-2000}" --warmup 0 >"$work/run.json" &
  load=$!
  while kill -0 "$load" 2>/dev/null; do
    rss=$(rss_kib); [ "$rss" -gt "$peak" ] && peak=$rss
    sleep 0.2
  done
  wait "$load"
  end=$(date +%s.%N); ticks1=$(cpu_ticks)
  python3 - "$work/run.json" "$scenario" "$(( (ticks1 - ticks0) ))" "$hz" "$start" "$end" "$peak" <<'PY'
import json, sys
run_file, scenario, ticks, hz, start, end, peak = sys.argv[1:]
text = open(run_file).read()
level = json.loads(text[text.index("{"):])
cpu = int(ticks) / int(hz)
cores = cpu / (float(end) - float(start))
print(f"{scenario}: {level['throughput_rps']:,.0f} req/s (p99 {level['latency_ms']['p99']:.2f} ms, "
      f"{level['errors']} errors), {cores:.2f} cores busy, "
      f"{cpu / max(level['requests'], 1) * 1e6:.0f} µs CPU per request, peak RSS {int(peak) // 1024} MiB")
PY
done
echo "RSS after all scenarios: $(( $(rss_kib) / 1024 )) MiB"
