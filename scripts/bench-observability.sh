#!/usr/bin/env bash
# The cost of observability on GET by id, side by side in one run (docs/BENCHMARKS.md):
#   off         production profile with metrics and tracing disabled (no recorder, no layer)
#   production  the production profile as shipped: metrics, /metrics, tracing sampled at 1%,
#               no storage spans, OTLP push to a local collector
#   everything  production plus 100% sampling, storage spans, an INFO log line per request
# The collector is the in-process test receiver (decodes every export). Configurations run in
# ROUNDS alternating rounds so that drift on the shared machine spreads over all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-6s}"
concurrency="${CONCURRENCY:-16}"
rounds="${ROUNDS:-3}"
cargo build --release -p portfolio-service -p pfs-observability --features pfs-observability/testing \
  --example otlp_sink --bin portfolio-service >/dev/null
bin=target/release/portfolio-service
sink=target/release/examples/otlp_sink
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

collector_port=$(free_port)
"$sink" "127.0.0.1:$collector_port" grpc >"$work/sink.log" &
pids+=($!)

start() { # start NAME ENV... -> prints the port
  local name=$1; shift
  local port; port=$(free_port)
  mkdir -p "$work/$name"
  env PORTFOLIO_ENV=production PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" \
    PORTFOLIO_DATA_DIR="$work/$name" PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY=0s "$@" \
    "$bin" serve >/dev/null 2>&1 &
  pids+=($!)
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
  echo "$port"
}
otel=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$collector_port" OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
off=$(start off PORTFOLIO_OBSERVABILITY__METRICS_ENABLED=false PORTFOLIO_OBSERVABILITY__TRACING_ENABLED=false)
production=$(start production "${otel[@]}")
everything=$(start everything "${otel[@]}" OTEL_TRACES_SAMPLER_ARG=1.0 \
  PORTFOLIO_OBSERVABILITY__FLAGS__DATABASE_TRACING=true PORTFOLIO_OBSERVABILITY__FLAGS__REQUEST_LOGGING=true \
  PORTFOLIO_LOG_LEVEL=info)

out=${OUT:-docs/bench/observability.jsonl}
mkdir -p "$(dirname "$out")"
: >"$out"
for round in $(seq 1 "$rounds"); do
  for name in off production everything; do
    port=${!name}
    "$bin" bench run --url "http://127.0.0.1:$port" --scenario get-by-id --duration "$duration" \
      --concurrency "$concurrency" --label "$name (round $round)" --out "$out"
  done
done
tail -n 1 "$work/sink.log"
python3 - "$out" <<'PY'
import json, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[r["label"].split(" (")[0]].append(r)
mean = lambda xs: sum(xs) / len(xs)
base = mean([r["throughput_rps"] for r in runs["off"]])
print("| configuration | req/s (mean) | vs off | p50 ms | p99 ms | req/s per round |")
print("|---|---|---|---|---|---|")
for name in ["off", "production", "everything"]:
    rs = runs[name]
    rps = mean([r["throughput_rps"] for r in rs])
    p50 = mean([r["latency_ms"]["p50"] for r in rs])
    p99 = mean([r["latency_ms"]["p99"] for r in rs])
    rounds = ", ".join(f"{r['throughput_rps']:,.0f}" for r in rs)
    print(f"| {name} | {rps:,.0f} | {rps / base * 100:.1f}% | {p50:.2f} | {p99:.2f} | {rounds} |")
PY
