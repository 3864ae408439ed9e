#!/usr/bin/env bash
# First-order figures for docs/BENCHMARKS.md: idle RSS, bulk-create-10 latency over sequential
# requests, and RSS after load. Starts a release build on a loopback port with a fresh SQLite
# database in a temporary directory, and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-18001}"
requests="${REQUESTS:-500}"
cargo build --release -p portfolio-service >/dev/null
bin=target/release/portfolio-service
data=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$data"' EXIT

PORTFOLIO_ENV=production PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" PORTFOLIO_DATA_DIR="$data" "$bin" &
server=$!
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
sleep 1
echo "idle RSS: $(ps -o rss= -p "$server") KiB"
"$bin" bench run --url "http://127.0.0.1:$port" --scenario bulk10 --requests "$requests" --concurrency 1 --pool 1
echo "RSS after bulk load: $(ps -o rss= -p "$server") KiB"
