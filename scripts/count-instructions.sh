#!/usr/bin/env bash
# Instructions per GET by id with observability off and on the production profile, counted by
# callgrind (valgrind): unlike throughput on a shared machine, the count does not move with
# other work, so it shows what the observability code itself costs. Both servers run on the
# production profile with a fresh SQLite database and the read cache on; the production one
# pushes OTLP to the in-process test collector. After 500 warm-up requests the counters are
# zeroed, REQUESTS requests are made (4 connections) and the counts dumped. The count covers
# every thread of the process, so background work (exports, the 1% of requests that are
# sampled) is included, per request.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${REQUESTS:-3000}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
source scripts/bench-servers.sh

declare -A counts
count() { # count NAME ENV...: instructions per request into counts[NAME]
  local name=$1; shift
  launch "$name" "$@" -- valgrind --tool=callgrind --callgrind-out-file="$work/$name.out"
  local load=("$bin" bench run --url "http://127.0.0.1:$port" --scenario get-by-id --pool 200 --concurrency 4)
  "${load[@]}" --requests 500 >/dev/null 2>&1
  callgrind_control -z "$pid" >/dev/null 2>&1
  "${load[@]}" --requests "$requests" --warmup 0 >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  local total
  total=$(callgrind_annotate "$work/$name.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  kill "$pid"
  counts[$name]=$((total / requests))
}
count off "${off[@]}"
count production "${otel[@]}"
echo "| configuration | instructions per request | vs off |"
echo "|---|---|---|"
for name in off production; do
  echo "| $name | ${counts[$name]} | $(python3 -c "print(f'{${counts[$name]} / ${counts[off]} * 100:.1f}%')") |"
done
