#!/usr/bin/env bash
# The service against bare hyper, side by side in one run, measured by wrk and by the service's
# own `bench run` under the same load (docs/BENCHMARKS.md, "Side by side with bare hyper"):
#   - bare hyper answering a fixed JSON body (`portfolio-service bench baseline`): the limit;
#   - bare hyper answering what `/health` answers, headers and body (`--answer-from`): what the
#     response itself costs on the wire, the bound of the `/health` row;
#   - `GET /health` (the whole HTTP stack, no storage);
#   - `GET /api/v1/portfolio/{id}` with the read cache on (SQLite);
#   - the same with the cache off, on SQLite and on PostgreSQL.
# Release build, production profile, PORTFOLIOS imported portfolios, ids cycling over the first
# 1,000. ROUNDS rounds; in each, every target is loaded for DURATION by wrk and by `bench run`
# with CONNECTIONS connections, the order of the targets and of the two tools reversed every other
# round. Prints the medians, the ratios to bare hyper (median of each round's ratio), the bench
# client's share of wrk on bare hyper and its CPU, as the Markdown table the doc quotes; raw rows
# in $OUT/side-by-side.jsonl. PostgreSQL is skipped (and said so) when it does not answer.
# BEFORE=path of an earlier build's binary adds its PostgreSQL cache-off row, the same load on
# the same machine in the same run (e.g. a build of the commit before a change, made in a
# `git worktree` of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-7}"
DURATION="${DURATION:-3s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PORTFOLIOS="${PORTFOLIOS:-10000}"
OUT="${OUT:-docs/bench}"
PG="${PORTFOLIO_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
schema="bench_side_$$"
pids=()
with_postgres=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -z "$with_postgres" ] || psql -qX "$PG" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -p portfolio-service >/dev/null
bin=target/release/portfolio-service
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
serve() { # [SERVE_BIN=binary] serve NAME ENV...: a production-profile server; sets ports[NAME]
  local name=$1; shift
  local port; port=$(free_port)
  env PORTFOLIO_ENV=production PORTFOLIO_LOG_LEVEL=error PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" \
    "$@" "${SERVE_BIN:-$bin}" serve >"$work/$name.log" 2>&1 &
  pids+=($!)
  until curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready"; do sleep 0.05; done
  ports[$name]=$port
}

declare -A ports urls scenarios
python3 scripts/make-sample-export.py "$PORTFOLIOS" > "$work/sample.json"
sqlite="sqlite://$work/bench.db"
PORTFOLIO_LOG_LEVEL=error PORTFOLIO_DATABASE_URL="$sqlite" "$bin" import --batch-size 5000 "$work/sample.json" >/dev/null
# pg_trgm in `public` first: the migration's `CREATE EXTENSION IF NOT EXISTS` would otherwise put
# it in the benchmark's schema (first on its search path), where other schemas cannot see it.
if psql -qX "$PG" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public" -c "CREATE SCHEMA $schema" >/dev/null 2>&1; then
  with_postgres=1
  postgres="$PG?options=-c%20search_path%3D$schema,public"
  PORTFOLIO_LOG_LEVEL=error PORTFOLIO_DATABASE_URL="$postgres" "$bin" import --batch-size 5000 "$work/sample.json" >/dev/null
else
  echo "PostgreSQL at $PG does not answer: its row is skipped" >&2
fi

ports[baseline]=$(free_port)
"$bin" bench baseline --port "${ports[baseline]}" 2>/dev/null &
pids+=($!)
until curl -sf -o /dev/null "http://127.0.0.1:${ports[baseline]}/"; do sleep 0.05; done
serve cached PORTFOLIO_DATABASE_URL="$sqlite"
serve sqlite_off PORTFOLIO_DATABASE_URL="$sqlite" PORTFOLIO_CACHE__ENABLED=false
ports[health_answer]=$(free_port)
"$bin" bench baseline --port "${ports[health_answer]}" --answer-from "http://127.0.0.1:${ports[cached]}/health" 2>/dev/null &
pids+=($!)
until curl -sf -o /dev/null "http://127.0.0.1:${ports[health_answer]}/"; do sleep 0.05; done
targets=(baseline health_answer health cached sqlite_off)
if [ -n "$with_postgres" ]; then
  serve postgres_off PORTFOLIO_DATABASE_URL="$postgres" PORTFOLIO_CACHE__ENABLED=false
  targets+=(postgres_off)
  if [ -n "${BEFORE:-}" ]; then
    SERVE_BIN=$BEFORE serve postgres_before PORTFOLIO_DATABASE_URL="$postgres" PORTFOLIO_CACHE__ENABLED=false
    targets+=(postgres_before)
  fi
fi
ports[health]=${ports[cached]}
scenarios=([baseline]=baseline [health_answer]=baseline [health]=health [cached]=get-by-id [sqlite_off]=get-by-id [postgres_off]=get-by-id [postgres_before]=get-by-id)
# wrk's request targets: the ids `bench run` cycles over (the first 1,000 of a search).
curl -sf "http://127.0.0.1:${ports[cached]}/api/v2/portfolios?limit=1000&fields=portfolioId" \
  | python3 -c 'import json, sys; [print("/api/v1/portfolio/" + p["portfolioId"]) for p in json.load(sys.stdin)["portfolios"]]' \
  > "$work/by-id.txt"
echo "/" > "$work/baseline.txt"
echo "/health" > "$work/health.txt"
paths_of() { case $1 in baseline | health_answer) echo "$work/baseline.txt" ;; health) echo "$work/health.txt" ;; *) echo "$work/by-id.txt" ;; esac; }

rows="$work/rows.jsonl"
measure() { # measure ROUND TARGET TOOL: one run, one JSON row
  local round=$1 target=$2 tool=$3 url="http://127.0.0.1:${ports[$2]}" rps cpu=null
  if [ "$tool" = wrk ]; then
    local text
    text=$(PATHS_FILE=$(paths_of "$target") wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s scripts/wrk/paths.lua "$url")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$text")
    grep -q "non-2xx/3xx: 0, socket errors: 0" <<<"$text" || echo "wrk $target: $(grep non-2xx <<<"$text")" >&2
  else
    local json
    json=$("$bin" bench run --url "$url" --scenario "${scenarios[$target]}" --duration "$DURATION" \
      --concurrency "$CONNECTIONS" --warmup 5 --pool 1000)
    read -r rps cpu < <(python3 -c '
import json, sys
r = json.load(sys.stdin)
cpu = r["client_cpu_cores"]
print(r["throughput_rps"], "null" if cpu is None else cpu)
if r["errors"]:
    print("bench run:", r["errors"], "errors", file=sys.stderr)' <<<"$json")
  fi
  echo "{\"round\": $round, \"target\": \"$target\", \"tool\": \"$tool\", \"rps\": $rps, \"client_cpu_cores\": $cpu}" >> "$rows"
  printf '  round %d  %-13s %-9s %10.0f req/s\n' "$round" "$target" "$tool" "$rps"
}

for round in $(seq 1 "$ROUNDS"); do
  order=("${targets[@]}") tools=(wrk bench)
  if [ $((round % 2)) = 0 ]; then
    order=(); for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("${targets[$i]}"); done
    tools=(bench wrk)
  fi
  for target in "${order[@]}"; do
    for tool in "${tools[@]}"; do measure "$round" "$target" "$tool"; done
  done
done

mkdir -p "$OUT"
cp "$rows" "$OUT/side-by-side.jsonl"
python3 - "$rows" "$CONNECTIONS" "$THREADS" "$DURATION" "$ROUNDS" "$(nproc)" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
connections, threads, duration, rounds, cores = sys.argv[2:]
names = {
    "baseline": ("bare hyper, fixed JSON (the limit)", None),
    "health_answer": ("bare hyper answering `/health`'s headers and body", None),
    "health": ("`/health` (no storage)", 0.75),
    "cached": ("`GET /api/v1/portfolio/{id}`, cache on", 0.60),
    "sqlite_off": ("same, cache off, SQLite", 0.30),
    "postgres_off": ("same, cache off, PostgreSQL", None),
    "postgres_before": ("same, cache off, PostgreSQL, the build before (`BEFORE`)", None),
}
by = {}
for r in rows:
    by.setdefault((r["target"], r["tool"]), {})[r["round"]] = r
def median_rps(target, tool):
    return statistics.median(r["rps"] for r in by[(target, tool)].values())
def median_ratio(target, tool):
    base = by[("baseline", tool)]
    return statistics.median(r["rps"] / base[n]["rps"] for n, r in by[(target, tool)].items())
print(f"\n{rounds} rounds, {duration} per run, {connections} connections (wrk -t{threads}), {cores} cores\n")
print("| server | wrk req/s (median) | vs bare hyper (wrk) | `bench run` req/s (median) | vs bare hyper (`bench run`) | target |")
print("|---|---|---|---|---|---|")
for target, (label, goal) in names.items():
    if (target, "wrk") not in by:
        continue
    goal_text = f">= {goal:.2f}" if goal else ("2x 7,271 req/s" if target == "postgres_off" else "")
    if target == "postgres_off" and (target, "wrk") in by and ("postgres_before", "wrk") in by:
        goal_text = f"2x the build before: **{median_rps(target, 'wrk') / median_rps('postgres_before', 'wrk'):.2f}x** (wrk)"
    print(f"| {label} | {median_rps(target, 'wrk'):,.0f} | **{median_ratio(target, 'wrk'):.2f}** | "
          f"{median_rps(target, 'bench'):,.0f} | {median_ratio(target, 'bench'):.2f} | {goal_text} |")
share = statistics.median(by[("baseline", "bench")][n]["rps"] / r["rps"] for n, r in by[("baseline", "wrk")].items())
cpu = [r["client_cpu_cores"] for r in rows if r["tool"] == "bench" and r["target"] == "baseline" and r["client_cpu_cores"]]
print(f"\n`bench run` against bare hyper: **{share:.0%} of wrk** (median of rounds; the rule is >= 90%),"
      f" using {statistics.median(cpu) if cpu else float('nan'):.2f} of {cores} cores itself (median).")
PY
