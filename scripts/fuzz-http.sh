#!/usr/bin/env bash
# Property-based HTTP fuzzing with schemathesis against the service's own OpenAPI document.
#
# Builds the binary, starts it on a free loopback port with a throwaway SQLite directory,
# installs schemathesis into a venv if missing (target/fuzz-venv; idempotent), runs every
# phase (examples, coverage, fuzzing, stateful) in positive and negative mode with a fixed
# seed, counts the requests sent, stops the service, and fails if any response was a 5xx
# (schemathesis' not_a_server_error check), if the service died, or if fewer than
# FUZZ_MIN_REQUESTS requests were sent.
#
#   scripts/fuzz-http.sh                      # the full run: >= 10,000 requests
#   FUZZ_EXAMPLES=100 FUZZ_MIN_REQUESTS=1000 scripts/fuzz-http.sh   # a quick run
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${FUZZ_EXAMPLES:-450}"
MIN_REQUESTS="${FUZZ_MIN_REQUESTS:-10000}"
SEED="${FUZZ_SEED:-20261125}"
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="$(realpath -m "${FUZZ_VENV:-$TARGET/fuzz-venv}")"

log() { printf '\n==> %s\n' "$*"; }

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

log "building portfolio-service"
cargo build -q -p portfolio-service --bin portfolio-service
BIN="$TARGET/debug/portfolio-service"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PORTFOLIO_ENV=development PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$PORT" PORTFOLIO_DATA_DIR="$WORK/data" \
  PORTFOLIO_LOG_LEVEL=warn PORTFOLIO_RATE_LIMIT__ENABLED=false \
  "$BIN" serve >"$WORK/service.log" 2>&1 &
SERVICE=$!
cleanup() {
  kill "$SERVICE" 2>/dev/null && wait "$SERVICE" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 120); do
  curl -fsS "$BASE/health/ready" >/dev/null 2>&1 && break
  kill -0 "$SERVICE" 2>/dev/null || { cat "$WORK/service.log"; echo "the service exited at start" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$BASE/health/ready" >/dev/null

# One schemathesis run exhausts the small input spaces (health, docs) long before 10,000
# requests, so runs repeat with the next seed (SEED, SEED+1, ...) until enough were sent:
# each run is reproducible from its seed.
requests=0
fives=0
status=0
seed="$SEED"
while [ "$requests" -lt "$MIN_REQUESTS" ]; do
  log "schemathesis: seed $seed, up to $EXAMPLES examples per operation and phase, positive and negative data"
  # From the work directory, so schemathesis' cache (.schemathesis/) stays out of the tree.
  (cd "$WORK" && "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
    --checks not_a_server_error \
    --mode all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$EXAMPLES" \
    --seed "$seed" \
    --generation-database none \
    --generation-allow-x00 true \
    --continue-on-failure \
    --workers 2 \
    --request-timeout 10 \
    --no-color \
    --report ndjson --report-ndjson-path "$WORK/events-$seed.ndjson") || status=$?
  # Every request is one interaction in the report.
  sent="$(python3 - "$WORK/events-$seed.ndjson" <<'PY'
import json, sys
total = 0
for line in open(sys.argv[1]):
    event = json.loads(line)
    for value in event.values():
        if isinstance(value, dict) and "recorder" in value:
            total += len(value["recorder"].get("interactions", {}))
print(total)
PY
)"
  [ "$sent" -gt 0 ] || { echo "schemathesis sent no requests" >&2; exit 1; }
  requests=$((requests + sent))
  fives=$((fives + $(grep -c '"status_code": 5[0-9][0-9]' "$WORK/events-$seed.ndjson" || true)))
  last="$seed"
  seed=$((seed + 1))
  [ "$status" = 0 ] || break
done
log "requests sent: $requests (seeds $SEED..$last); 5xx responses: $fives; schemathesis exit status: $status"

kill -0 "$SERVICE" 2>/dev/null || { cat "$WORK/service.log"; echo "the service died during the run" >&2; exit 1; }
if grep -q "panicked" "$WORK/service.log"; then
  grep -m5 "panicked" "$WORK/service.log" >&2
  echo "the service panicked" >&2
  exit 1
fi
[ "$status" = 0 ] || { echo "schemathesis reported failures" >&2; exit 1; }
[ "$fives" = 0 ] || { echo "$fives responses were 5xx" >&2; exit 1; }
[ "$requests" -ge "$MIN_REQUESTS" ] || { echo "only $requests requests (want >= $MIN_REQUESTS)" >&2; exit 1; }
log "fuzzing passed: $requests requests, no 5xx"
