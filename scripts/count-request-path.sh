#!/usr/bin/env bash
# Instructions per request along the HTTP path, counted by callgrind: bare hyper (`bench
# baseline`), `GET /health` and the cached `GET /api/v1/portfolio/{id}` on the production
# profile (metrics on, tracing sampled at 1%, no OTLP endpoint), each server alone under
# valgrind. After 3 s of warm-up the counters are zeroed, wrk loads it for SECONDS_MEASURED (10)
# with 4 connections, and the count is divided by the requests wrk counted; it covers every thread
# of the server. wrk sends the same requests to every build.
# With ANNOTATE=DIR, callgrind_annotate's inclusive costs of each run are written there, to
# attribute the difference between the three to layers (docs/BENCHMARKS.md), with the raw
# profiles beside them.
# BIN=path measures another build of the server (e.g. the one before a change).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SECONDS_MEASURED:-10}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release -p portfolio-service >/dev/null
  BIN=target/release/portfolio-service
fi
work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

count() { # count NAME PATH baseline|serve: prints NAME and instructions per request
  local name=$1 path=$2 port; port=$(free_port)
  local command=("$BIN" serve --port "$port")
  [ "$3" = serve ] || command=("$BIN" bench baseline --port "$port")
  mkdir -p "$work/$name"
  env PORTFOLIO_ENV=production PORTFOLIO_LOG_LEVEL=error PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" \
    PORTFOLIO_DATA_DIR="$work/$name" PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY=0s \
    valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "${command[@]}" >/dev/null 2>"$work/$name.log" &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.2; done
  if [ "$path" = by-id ]; then
    # 100 portfolios, each read in turn (all from the cache after the warm-up).
    python3 -c 'import json; print(json.dumps([{"name": f"count-{i}"} for i in range(100)]))' \
      | curl -sf -H 'content-type: application/json' --data-binary @- "http://127.0.0.1:$port/api/v2/portfolios" \
      | python3 -c 'import json, sys; [print("/api/v1/portfolio/" + p["portfolioId"]) for p in json.load(sys.stdin)]' \
      > "$work/$name.paths"
  else
    echo "$path" > "$work/$name.paths"
  fi
  local load=(env PATHS_FILE="$work/$name.paths" wrk -t1 -c4 -s scripts/wrk/paths.lua "http://127.0.0.1:$port")
  "${load[@]}" -d3s >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  local requests
  requests=$("${load[@]}" -d"${seconds}s" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null 2>&1
  local total
  total=$(callgrind_annotate "$work/$name.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  if [ -n "${ANNOTATE:-}" ]; then
    mkdir -p "$ANNOTATE"
    callgrind_annotate --inclusive=yes --threshold=100 "$work/$name.out.1" >"$ANNOTATE/$name.txt" 2>/dev/null
    # The raw profile too, for callers and callees (`callgrind_annotate --tree=caller`).
    cp "$work/$name.out.1" "$ANNOTATE/$name.callgrind.out"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$name $((total / requests)) $requests"
}

results=()
results+=("$(count baseline / baseline)")
results+=("$(count health /health serve)")
results+=("$(count cached_get by-id serve)")
echo "| request | instructions per request | requests counted |"
echo "|---|---|---|"
for line in "${results[@]}"; do
  read -r name n requests <<<"$line"
  echo "| $name | $n | $requests |"
done
