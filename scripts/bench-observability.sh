#!/usr/bin/env bash
# The cost of observability on GET by id, side by side in one run (docs/BENCHMARKS.md):
#   off         production profile with metrics and tracing disabled (no recorder, no layer)
#   production  the production profile as shipped: metrics, /metrics, tracing sampled at 1%,
#               no storage spans, OTLP push to a local collector
#   everything  production plus 100% sampling, storage spans, an INFO log line per request
# The collector is the in-process test receiver (decodes every export).
#
# Every round starts fresh server processes (fresh SQLite each): within one set of processes
# the ratios agree closely, but from one set to the next they moved by several points (memory
# layout, thread placement), more than the cost being measured; new processes each round put
# that spread into the median instead of into one run's result.
#
# ROUNDS rounds run the three one after the other, in reverse order every other round, with
# SETTLE seconds of rest after each run, so that no run pays for the exports (and the
# collector's decoding) of the one before, "everything" above all. Then PAIRS rounds load off
# and production at the same time (two clients, PAIR_DURATION each; production's client starts
# first every other round), so both meet the same machine at the same instant; sharing the
# cores with a second server also hides part of what a larger instruction footprint costs a
# server alone. Instructions per request, which no noise moves, come from
# scripts/count-instructions.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-3s}"
concurrency="${CONCURRENCY:-16}"
rounds="${ROUNDS:-10}"
settle="${SETTLE:-2}"
pairs="${PAIRS:-10}"
pair_duration="${PAIR_DURATION:-4s}"
source scripts/bench-servers.sh
everything=("${otel[@]}" OTEL_TRACES_SAMPLER_ARG=1.0 PORTFOLIO_OBSERVABILITY__FLAGS__DATABASE_TRACING=true
  PORTFOLIO_OBSERVABILITY__FLAGS__REQUEST_LOGGING=true PORTFOLIO_LOG_LEVEL=info)
declare -A ports logs
# start ROUND NAME...: fresh servers for this round, their ports in `ports`.
start() {
  local round=$1; shift
  for name in "$@"; do
    case $name in
      off) launch "$name-$round" "${off[@]}" ;;
      production) launch "$name-$round" "${otel[@]}" ;;
      everything) launch "$name-$round" "${everything[@]}" ;;
    esac
    ports[$name]=$port
    logs[$name]="$work/$name-$round.log"
    running+=("$pid")
  done
}
# stop: ends this round's servers (and waits, so the next round has the machine to itself).
stop() {
  kill "${running[@]}" 2>/dev/null || true
  wait "${running[@]}" 2>/dev/null || true
  running=()
}
running=()

out=${OUT:-docs/bench/observability.jsonl}
mkdir -p "$(dirname "$out")"
: >"$out"
for round in $(seq 1 "$rounds"); do
  order="off production everything"
  [ $((round % 2)) = 0 ] && order="everything production off"
  start "$round" $order
  for name in $order; do
    if ! "$bin" bench run --url "http://127.0.0.1:${ports[$name]}" --scenario get-by-id \
      --duration "$duration" --concurrency "$concurrency" --label "$name (round $round)" --out "$out"; then
      echo "bench run against '$name' failed; its log (warnings and errors):" >&2
      grep -v '"level":"INFO"' "${logs[$name]}" | tail -n 20 >&2
      exit 1
    fi
    sleep "$settle"
  done
  stop
done
# Simultaneous pairs; each client writes its own file (lines written at once would interleave).
pair_out=${PAIR_OUT:-docs/bench/observability-pairs.jsonl}
: >"$pair_out"
for round in $(seq 1 "$pairs"); do
  order="off production"
  [ $((round % 2)) = 0 ] && order="production off"
  start "pair-$round" $order
  clients=()
  for name in $order; do
    "$bin" bench run --url "http://127.0.0.1:${ports[$name]}" --scenario get-by-id \
      --duration "$pair_duration" --concurrency "$concurrency" --label "$name (pair $round)" \
      --out "$work/pair-$name.jsonl" >/dev/null &
    clients+=($!)
  done
  wait "${clients[@]}"
  stop
  sleep "$settle"
done
cat "$work/pair-off.jsonl" "$work/pair-production.jsonl" >"$pair_out"
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
python3 - "$pair_out" <<'PY'
import json, sys, collections, statistics
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r = json.loads(line)
    name, round_ = r["label"].split(" (pair ")
    runs[name][round_] = r["throughput_rps"]
off, production = runs["off"], runs["production"]
ratios = [production[k] / off[k] for k in off]
print()
print("| loaded at the same time | off req/s (mean) | production req/s (mean) | production vs off (median of pairs) | vs off (sums) | per pair |")
print("|---|---|---|---|---|---|")
print(f"| {len(ratios)} pairs | {statistics.mean(off.values()):,.0f} | {statistics.mean(production.values()):,.0f} "
      f"| {statistics.median(ratios) * 100:.1f}% | {sum(production.values()) / sum(off.values()) * 100:.1f}% "
      f"| {', '.join(f'{r * 100:.1f}%' for r in ratios)} |")
PY
