#!/usr/bin/env bash
# The cost of observability on GET by id, side by side in one run (docs/BENCHMARKS.md):
#   off         production profile with metrics and tracing disabled (no recorder, no layer)
#   production  the production profile as shipped: metrics, /metrics, tracing sampled at 1%,
#               no storage spans, OTLP push to a local collector
#   everything  production plus 100% sampling, storage spans, an INFO log line per request
# The collector is the in-process test receiver (decodes every export). After each run the
# machine is left SETTLE seconds, so that no run pays for the exports (and the collector's
# decoding) of the one before, "everything" above all. Configurations run in
# ROUNDS rounds, in reverse order every other round, so that drift on the shared machine spreads
# over all of them; each round's ratios compare runs seconds apart, and their median is the
# figure least moved by the machine's noise. Instructions per request, which no noise moves,
# come from scripts/count-instructions.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-3s}"
concurrency="${CONCURRENCY:-16}"
rounds="${ROUNDS:-10}"
settle="${SETTLE:-2}"
source scripts/bench-servers.sh
declare -A ports
launch off "${off[@]}"
ports[off]=$port
launch production "${otel[@]}"
ports[production]=$port
launch everything "${otel[@]}" OTEL_TRACES_SAMPLER_ARG=1.0 PORTFOLIO_OBSERVABILITY__FLAGS__DATABASE_TRACING=true \
  PORTFOLIO_OBSERVABILITY__FLAGS__REQUEST_LOGGING=true PORTFOLIO_LOG_LEVEL=info
ports[everything]=$port

out=${OUT:-docs/bench/observability.jsonl}
mkdir -p "$(dirname "$out")"
: >"$out"
for round in $(seq 1 "$rounds"); do
  order="off production everything"
  [ $((round % 2)) = 0 ] && order="everything production off"
  for name in $order; do
    if ! "$bin" bench run --url "http://127.0.0.1:${ports[$name]}" --scenario get-by-id \
      --duration "$duration" --concurrency "$concurrency" --label "$name (round $round)" --out "$out"; then
      echo "bench run against '$name' failed; its log (warnings and errors):" >&2
      grep -v '"level":"INFO"' "$work/$name.log" | tail -n 20 >&2
      exit 1
    fi
    sleep "$settle"
  done
done
tail -n 1 "$work/sink.log"
python3 - "$out" <<'PY'
import json, sys, collections, statistics
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r = json.loads(line)
    name, round_ = r["label"].split(" (round ")
    runs[name][round_] = r
mean = lambda xs: sum(xs) / len(xs)
off = runs["off"]
base = mean([r["throughput_rps"] for r in off.values()])
print("| configuration | req/s (mean) | vs off (means) | vs off (median of rounds) | p50 ms | p99 ms | req/s per round |")
print("|---|---|---|---|---|---|---|")
for name in ["off", "production", "everything"]:
    rs = runs[name]
    rps = mean([r["throughput_rps"] for r in rs.values()])
    paired = statistics.median(rs[k]["throughput_rps"] / off[k]["throughput_rps"] for k in rs)
    p50 = mean([r["latency_ms"]["p50"] for r in rs.values()])
    p99 = mean([r["latency_ms"]["p99"] for r in rs.values()])
    rounds = ", ".join(f"{r['throughput_rps']:,.0f}" for r in rs.values())
    print(f"| {name} | {rps:,.0f} | {rps / base * 100:.1f}% | {paired * 100:.1f}% | {p50:.2f} | {p99:.2f} | {rounds} |")
PY
