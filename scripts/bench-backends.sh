#!/usr/bin/env bash
# SQLite, PostgreSQL and MongoDB side by side on the same scenarios, in one run, with the read
# cache off (so the backend, not the cache, is measured) over the same 10,000 imported
# portfolios. Needs the servers scripts/test.sh provisions (PostgreSQL on 127.0.0.1:5432,
# a MongoDB wire-protocol server on 127.0.0.1:27017). Writes docs/bench-backends/.
# BACKENDS picks some of them (e.g. BACKENDS="sqlite postgres"): the MongoDB surrogate's searches
# take seconds per request, which can make its column alone last many minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-6s}"
CONCURRENCY="${CONCURRENCY:-16}"
BACKENDS="${BACKENDS:-sqlite postgres mongo}"
OUT="${OUT:-docs/bench-backends}"
PG="${PORTFOLIO_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
MONGO="${PORTFOLIO_TEST_MONGO_URL:-mongodb://127.0.0.1:27017}"
work=$(mktemp -d)
schema="bench_$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  psql -qX "$PG" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -p portfolio-service >/dev/null
bin=target/release/portfolio-service
runs="$work/runs.jsonl"
python3 scripts/make-sample-export.py 10000 > "$work/sample.json"
# pg_trgm in `public` first, or the migration would create it in this schema (first on its path).
psql -qX "$PG" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public" -c "CREATE SCHEMA $schema" >/dev/null
declare -A urls=(
  [sqlite]="sqlite://$work/bench.db"
  [postgres]="$PG?options=-c%20search_path%3D$schema,public"
  [mongo]="$MONGO"
)
port=18100
for backend in $BACKENDS; do
  port=$((port + 1))
  common=(env PORTFOLIO_ENV=production PORTFOLIO_LOG_LEVEL=error PORTFOLIO_DATABASE_URL="${urls[$backend]}"
          PORTFOLIO_DATABASE__MONGO_DATABASE="bench_$$" PORTFOLIO_CACHE__ENABLED=false)
  "${common[@]}" "$bin" import --batch-size 5000 "$work/sample.json"
  "${common[@]}" PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT=$port "$bin" serve &
  pids+=($!)
  until curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready"; do sleep 0.01; done
  for scenario in get-by-id search-page search-name mixed; do
    "$bin" bench run --url "http://127.0.0.1:$port" --scenario "$scenario" --label "$backend" \
      --duration "$DURATION" --concurrency "$CONCURRENCY" --out "$runs" >/dev/null
  done
  "$bin" bench run --url "http://127.0.0.1:$port" --scenario bulk10 --label "$backend" \
    --requests 1000 --concurrency 1 --out "$runs" >/dev/null
  kill "${pids[-1]}"
done
if [ -n "${MONGO_CLEANUP:-1}" ]; then
  python3 - "$MONGO" "bench_$$" <<'PY' || true
import socket, struct, sys
# dropDatabase over OP_MSG, so no driver is needed.
host, port = sys.argv[1].split("//")[1].split("/")[0].split(":")
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("dropDatabase") + struct.pack("<i", 1) + b"\x02" + cstr("$db") + struct.pack("<i", len(sys.argv[2]) + 1) + cstr(sys.argv[2])
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc
with socket.create_connection((host, int(port)), timeout=3) as s:
    s.sendall(struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg); s.recv(1024)
PY
fi
"$bin" bench report --out "$OUT" --title "Backends side by side (10k portfolios, cache off)" "$runs"
cp "$runs" "$OUT/runs.jsonl"
