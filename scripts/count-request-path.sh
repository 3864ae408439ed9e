#!/usr/bin/env bash
# Instructions per request along the HTTP path, counted by callgrind: bare hyper (`bench
# baseline`), `GET /health` and the cached `GET /api/v1/portfolio/{id}` on the production
# profile (metrics on, tracing sampled at 1%, no OTLP endpoint), each server alone under
# valgrind. After WARMUP requests the counters are zeroed, REQUESTS requests are made
# (4 connections) and the counts dumped; the per-request figure covers every thread of the server.
# With ANNOTATE=DIR, callgrind_annotate's inclusive costs of each run are written there, to
# attribute the difference between the three to layers (docs/BENCHMARKS.md).
# BIN=path measures another build of the server (e.g. the one before a change); the load always
# comes from this tree's `bench run` (LOAD_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${REQUESTS:-3000}"
warmup="${WARMUP:-500}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [ -z "${LOAD_BIN:-}" ]; then
  cargo build --release -p portfolio-service >/dev/null
  LOAD_BIN=target/release/portfolio-service
fi
BIN="${BIN:-$LOAD_BIN}"
work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

count() { # count NAME SCENARIO baseline|serve: prints NAME and instructions per request
  local name=$1 scenario=$2 command=("$BIN")
  if [ "$3" = serve ]; then command+=(serve); else command+=(bench baseline); fi
  local port; port=$(free_port)
  [ "$3" = serve ] || command+=(--port "$port")
  mkdir -p "$work/$name"
  env PORTFOLIO_ENV=production PORTFOLIO_LOG_LEVEL=error PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" \
    PORTFOLIO_DATA_DIR="$work/$name" PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY=0s \
    valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "${command[@]}" >/dev/null 2>"$work/$name.log" &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/" || curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do sleep 0.2; done
  local load=("$LOAD_BIN" bench run --url "http://127.0.0.1:$port" --scenario "$scenario" --pool 200 --concurrency 4)
  "${load[@]}" --requests "$warmup" >/dev/null 2>&1
  callgrind_control -z "$pid" >/dev/null 2>&1
  "${load[@]}" --requests "$requests" --warmup 0 >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  local total
  total=$(callgrind_annotate "$work/$name.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  if [ -n "${ANNOTATE:-}" ]; then
    mkdir -p "$ANNOTATE"
    callgrind_annotate --inclusive=yes --threshold=100 "$work/$name.out.1" >"$ANNOTATE/$name.txt" 2>/dev/null
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$name $((total / requests))"
}

results=()
results+=("$(count baseline baseline baseline)")
results+=("$(count health health serve)")
results+=("$(count cached_get get-by-id serve)")
echo "| request | instructions per request |"
echo "|---|---|"
for line in "${results[@]}"; do
  read -r name n <<<"$line"
  echo "| $name | $n |"
done
