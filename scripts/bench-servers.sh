# Sourced by the observability benchmarks (bench-observability.sh, count-instructions.sh): one
# release build, a scratch directory, the in-process test OTLP collector, and `launch` for
# servers on the production profile. Everything started here is stopped when the script exits.
cargo build --release -p portfolio-service -p pfs-observability --features pfs-observability/testing \
  --example otlp_sink --bin portfolio-service >/dev/null
bin=target/release/portfolio-service
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

collector_port=$(free_port)
target/release/examples/otlp_sink "127.0.0.1:$collector_port" grpc >"$work/sink.log" &
pids+=($!)
# The environments compared: observability off, and OTLP push to the collector.
off=(PORTFOLIO_OBSERVABILITY__METRICS_ENABLED=false PORTFOLIO_OBSERVABILITY__TRACING_ENABLED=false)
otel=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$collector_port" OTEL_EXPORTER_OTLP_PROTOCOL=grpc)

# launch NAME [ENV=VALUE...] [-- WRAPPER...]: a server on the production profile with a fresh
# SQLite database and a free port, run under WRAPPER if given (valgrind), its stderr in
# $work/NAME.log; returns once it answers, with `port` and `pid` set. Not to be called in a
# subshell: the trap must learn its pid.
launch() {
  local name=$1; shift
  local env=() wrapper=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do env+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; wrapper=("$@"); fi
  port=$(free_port)
  mkdir -p "$work/$name"
  env PORTFOLIO_ENV=production PORTFOLIO_HOST=127.0.0.1 PORTFOLIO_PORT="$port" \
    PORTFOLIO_DATA_DIR="$work/$name" PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY=0s "${env[@]}" \
    "${wrapper[@]}" "$bin" serve >/dev/null 2>"$work/$name.log" &
  pid=$!
  pids+=("$pid")
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
}
