#!/usr/bin/env bash
# Makes sure a MongoDB server answers at $PORTFOLIO_TEST_MONGO_URL (default
# mongodb://127.0.0.1:27017) for the MongoDB backend's tests. Safe to run repeatedly:
#   1. a server already answers -> nothing to do;
#   2. `mongod` is installed      -> start it (a single-node replica set, so transactions work);
#   3. otherwise                  -> install cmake (apt) and the secantus-mdb surrogate server
#      (cargo, cached in $SECANTUS_HOME) and start `secantusd-rs`.
# Started servers run in the background on 127.0.0.1 with data and log under $MONGO_RUN_DIR.
# Exits non-zero with a message when no server can be provided; it never skips silently.
set -euo pipefail

URL="${PORTFOLIO_TEST_MONGO_URL:-mongodb://127.0.0.1:27017}"
SECANTUS_VERSION="${SECANTUS_VERSION:-0.5.3-beta.196}"
SECANTUS_HOME="${SECANTUS_HOME:-${HOME:-/root}/.cache/portfolio-service/secantus}"
MONGO_RUN_DIR="${MONGO_RUN_DIR:-/tmp/portfolio-mongo}"
WAIT_SECS="${MONGO_WAIT_SECS:-60}"

say() { echo "provision-mongo: $*"; }
fail() { echo "provision-mongo: ERROR: $*" >&2; exit 1; }

# host:port of the first host in the URL (no credentials, options or further hosts).
hostport="${URL#mongodb://}"
hostport="${hostport##*@}"
hostport="${hostport%%/*}"
hostport="${hostport%%\?*}"
hostport="${hostport%%,*}"
[[ "$URL" == mongodb://* ]] || fail "only mongodb:// URLs can be checked or provisioned, got $URL"
HOST="${hostport%%:*}"
PORT="${hostport##*:}"
[[ "$PORT" == "$hostport" ]] && PORT=27017

# True when something on HOST:PORT completes a MongoDB `hello` (an OP_MSG round trip), or,
# without python3, at least accepts a TCP connection.
answers() {
    if ! command -v python3 >/dev/null 2>&1; then
        (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
        return
    fi
    python3 - "$HOST" "$PORT" <<'PY' 2>/dev/null
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
# {hello: 1, $db: "admin"} as BSON.
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("hello") + struct.pack("<i", 1) + b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc
header = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)
with socket.create_connection((host, port), timeout=2) as s:
    s.settimeout(3)
    s.sendall(header + msg)
    head = s.recv(16)
    length, _, _, opcode = struct.unpack("<iiii", head)
    data = b""
    while len(data) < length - 16:
        chunk = s.recv(length - 16 - len(data))
        if not chunk: raise SystemExit(1)
        data += chunk
    ok = opcode == 2013 and b"ok\0" in data
raise SystemExit(0 if ok else 1)
PY
}

wait_until_answering() {
    local pid="$1" log="$2"
    for _ in $(seq 1 "$WAIT_SECS"); do
        if answers; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2 || true
            fail "the server (pid $pid) exited before answering; log: $log"
        fi
        sleep 1
    done
    tail -n 30 "$log" >&2 || true
    fail "the server (pid $pid) did not answer on $HOST:$PORT within ${WAIT_SECS}s; log: $log"
}

# Only loopback servers are probed or started from here: this script runs in CI and on
# developer machines, and must never send traffic to another host. A remote test server is
# the caller's to provide; the tests themselves fail clearly if it does not answer.
case "$HOST" in
    127.*|localhost) ;;
    *) say "$HOST is not a loopback address: not probing or starting anything; the tests will use it as given"; exit 0 ;;
esac
if answers; then
    say "a MongoDB server already answers at $HOST:$PORT; nothing to do"
    exit 0
fi
mkdir -p "$MONGO_RUN_DIR"

if command -v mongod >/dev/null 2>&1; then
    data="$MONGO_RUN_DIR/mongod-data"
    log="$MONGO_RUN_DIR/mongod.log"
    mkdir -p "$data"
    say "starting $(command -v mongod) on $HOST:$PORT (replica set rs0, data $data)"
    mongod --bind_ip "$HOST" --port "$PORT" --dbpath "$data" --replSet rs0 --logpath "$log" --fork >/dev/null
    pid="$(pgrep -n -f "mongod .*--port $PORT" || true)"
    wait_until_answering "${pid:-0}" "$log"
    if command -v mongosh >/dev/null 2>&1; then
        mongosh --quiet --port "$PORT" --eval \
            "try { rs.status() } catch (e) { rs.initiate({_id: 'rs0', members: [{_id: 0, host: '$HOST:$PORT'}]}) }" \
            >/dev/null || say "warning: could not initiate the replica set; the store falls back to compensation"
    fi
    say "mongod answers at $HOST:$PORT"
    exit 0
fi

bin="$SECANTUS_HOME/bin/secantusd-rs"
if [[ -x "$bin" ]]; then
    say "using cached $bin"
else
    command -v cargo >/dev/null 2>&1 || fail "no mongod, no cached secantusd-rs and no cargo to build it"
    if ! command -v cmake >/dev/null 2>&1; then
        say "installing cmake (needed to build WiredTiger)"
        if [[ "$(id -u)" == 0 ]]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
        "${apt_get[@]}" update -qq >/dev/null || fail "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq cmake >/dev/null || fail "installing cmake failed"
    fi
    # Every published version declares rust-version 1.98; it builds on 1.95, hence
    # --ignore-rust-version. A pre-release, so the version must be named. Its own target dir
    # keeps it off the workspace's build lock.
    say "building secantus-mdb $SECANTUS_VERSION into $SECANTUS_HOME (takes several minutes once)"
    CARGO_TARGET_DIR="${SECANTUS_TARGET_DIR:-/tmp/secantus-target}" cargo install secantus-mdb \
        --version "$SECANTUS_VERSION" --locked --ignore-rust-version --root "$SECANTUS_HOME" \
        || fail "cargo install secantus-mdb $SECANTUS_VERSION failed"
    [[ -x "$bin" ]] || fail "cargo install finished but $bin is missing"
fi

data="$MONGO_RUN_DIR/secantus-data"
log="$MONGO_RUN_DIR/secantus.log"
mkdir -p "$data"
say "starting $bin on $HOST:$PORT (data $data, log $log)"
# A config file is auto-discovered from the working directory; run from the data dir so no
# stray one is picked up. setsid detaches it from this script's process group.
(cd "$data" && exec setsid "$bin" --host "$HOST" --port "$PORT" --storage-path "$data" \
    --cache-size 256M --log-file-max 32MB --log-level WARNING >"$log" 2>&1 </dev/null) &
pid=$!
echo "$pid" >"$MONGO_RUN_DIR/secantus.pid"
wait_until_answering "$pid" "$log"
say "secantusd-rs (pid $pid) answers at $HOST:$PORT"
