#!/usr/bin/env bash
# The numbers of docs/BENCHMARKS.md, measured side by side in one run on loopback:
#   - the bare hyper baseline and the service (SQLite, production profile) with the cache on
#     and off, under the same load;
#   - every scenario over a database of 100,000 imported portfolios;
#   - RSS under load, and start-up to ready (empty database and 100k).
# Writes docs/bench/{report.md,*.svg} and prints a summary. Takes about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-8s}"
CONCURRENCY="${CONCURRENCY:-16}"
OUT="${OUT:-docs/bench}"
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -p portfolio-service >/dev/null
bin=target/release/portfolio-service
runs="$work/runs.jsonl"

ms_now() { date +%s%3N; }
# start NAME PORT ENV... : starts a service, prints its start-up-to-ready time in ms
start() {
  local name=$1 port=$2; shift 2
  local t0; t0=$(ms_now)
  env PORTFOLIO_ENV=production PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" PORTFOLIO_LOG_LEVEL=error "$@" "$bin" serve &
  pids+=($!)
  eval "pid_$name=$!"
  until curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready"; do sleep 0.001; done
  echo "start-up to ready ($name): $(( $(ms_now) - t0 )) ms"
}
rss() { echo "$(( $(ps -o rss= -p "$1") / 1024 )) MiB"; }
summary='
import json, sys
r = json.load(sys.stdin)
l = r["latency_ms"]
print("%24s %12s c=%-3d %9.0f req/s  p50 %.3f ms  p99 %.3f ms  errors %d  hit rate %s"
      % (r["label"], r["scenario"], r["concurrency"], r["throughput_rps"], l["p50"], l["p99"], r["errors"], r["cache_hit_rate"]))
'
bench() { # bench URL SCENARIO LABEL [extra args]
  local url=$1 scenario=$2 label=$3; shift 3
  "$bin" bench run --url "$url" --scenario "$scenario" --label "$label" --out "$runs" "$@" >/dev/null
  tail -n 1 "$runs" | python3 -c "$summary"
}

echo "== start-up on an empty database"
start empty 18010 PORTFOLIO_DATA_DIR="$work/empty"
echo "idle RSS: $(rss "$pid_empty")"

echo "== importing 100,000 portfolios"
python3 scripts/make-sample-export.py 100000 > "$work/sample.json"
PORTFOLIO_DATA_DIR="$work/data" PORTFOLIO_LOG_LEVEL=error "$bin" import --batch-size 5000 "$work/sample.json"

"$bin" bench baseline --port 18080 2>/dev/null &
pids+=($!)
until curl -sf -o /dev/null http://127.0.0.1:18080/; do sleep 0.01; done
start cached 18001 PORTFOLIO_DATA_DIR="$work/data"
start uncached 18002 PORTFOLIO_DATA_DIR="$work/data" PORTFOLIO_CACHE__ENABLED=false

load=(--duration "$DURATION" --concurrency "$CONCURRENCY")
echo "== get by id: baseline vs cache on vs cache off (c=$CONCURRENCY, $DURATION each)"
bench http://127.0.0.1:18080 baseline "bare hyper" "${load[@]}"
bench http://127.0.0.1:18001 get-by-id "cache on" "${load[@]}"
echo "RSS under load (cache on): $(rss "$pid_cached")"
bench http://127.0.0.1:18002 get-by-id "cache off" "${load[@]}"
echo "== searches over 100,000 portfolios"
bench http://127.0.0.1:18002 search-page "cache off" "${load[@]}"
bench http://127.0.0.1:18001 search-page "cache on" "${load[@]}"
bench http://127.0.0.1:18002 search-name "cache off" "${load[@]}"
echo "== writes"
bench http://127.0.0.1:18002 bulk10 "sequential" --requests 2000 --concurrency 1
bench http://127.0.0.1:18001 mixed "cache on" "${load[@]}"
echo "RSS after all load: cache on $(rss "$pid_cached"), cache off $(rss "$pid_uncached")"

"$bin" bench report --out "$OUT" --title "GlobeCo Portfolio Service (SQLite, 100k portfolios)" "$runs"
cp "$runs" "$OUT/runs.jsonl"
