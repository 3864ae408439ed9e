#!/usr/bin/env bash
# Instructions per GET by id with observability off and on the production profile, counted by
# callgrind (valgrind): unlike throughput on a shared machine, the count does not move with
# other work, so it shows what the observability code itself costs. Both servers run on the
# production profile with a fresh SQLite database and the read cache on; the production one
# pushes OTLP to the in-process test collector. After 500 warm-up requests the counters are
# zeroed, REQUESTS requests are made (4 connections) and the counts dumped. The count covers
# every thread of the process, so background work (exports, the 1% of requests that are
# sampled) is included, per request.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${REQUESTS:-3000}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -p portfolio-service -p pfs-observability --features pfs-observability/testing \
  --example otlp_sink --bin portfolio-service >/dev/null
bin=target/release/portfolio-service
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

collector_port=$(free_port)
target/release/examples/otlp_sink "127.0.0.1:$collector_port" grpc >/dev/null &
pids+=($!)

count() { # count NAME ENV... -> prints "NAME instructions-per-request"
  local name=$1; shift
  local port; port=$(free_port)
  mkdir -p "$work/$name"
  env PORTFOLIO_ENV=production PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" \
    PORTFOLIO_DATA_DIR="$work/$name" PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY=0s "$@" \
    valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "$bin" serve >/dev/null 2>&1 &
  local pid=$!
  pids+=("$pid")
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.2; done
  local load=("$bin" bench run --url "http://127.0.0.1:$port" --scenario get-by-id --pool 200 --concurrency 4)
  "${load[@]}" --requests 500 >/dev/null 2>&1
  callgrind_control -z "$pid" >/dev/null 2>&1
  "${load[@]}" --requests "$requests" --warmup 0 >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  local total
  total=$(callgrind_annotate "$work/$name.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  kill "$pid"
  echo "$name $((total / requests))"
}
off=$(count off PORTFOLIO_OBSERVABILITY__METRICS_ENABLED=false PORTFOLIO_OBSERVABILITY__TRACING_ENABLED=false)
production=$(count production OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$collector_port" OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
echo "| configuration | instructions per request | vs off |"
echo "|---|---|---|"
base=${off#* }
for line in "$off" "$production"; do
  name=${line% *}; n=${line#* }
  echo "| $name | $n | $(python3 -c "print(f'{$n / $base * 100:.1f}%')") |"
done
