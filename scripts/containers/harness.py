"""Processes, ports, HTTP and the load balancer for the container and rollout tests.

Standard library only. Everything started here is stopped by `Cleanup`, also when a check fails.
"""

import contextlib
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("PORTFOLIO_BINARY", os.path.join(REPO, "target", "release", "portfolio-service"))


class CheckFailed(Exception):
    """A property the test asserts does not hold."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def reserved_port():
    """A free port below the ephemeral range, for a listener started much later: a port from the
    ephemeral range can meanwhile become the local end of some outgoing connection."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    for _ in range(200):
        port = random.randrange(10000, ephemeral_low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise CheckFailed(f"no free port between 10000 and {ephemeral_low}")


def eventually(what, timeout_s, probe, interval_s=0.1):
    """Calls `probe` until it returns something truthy; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except (OSError, http.client.HTTPException, CheckFailed) as error:
            last_error = error
        time.sleep(interval_s)
    raise CheckFailed(f"{what}: not within {timeout_s:g} s" + (f" (last error: {last_error})" if last_error else ""))


def request(method, url, body=None, timeout_s=5.0, headers=None):
    """One HTTP request on a fresh connection: (status, parsed JSON body or None)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        payload = None if body is None else json.dumps(body)
        all_headers = {"content-type": "application/json"} if payload else {}
        all_headers.update(headers or {})
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, parsed
    finally:
        connection.close()


def percentile(values, p):
    """Nearest-rank percentile of unsorted values (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Process:
    """A child process whose output goes to a log file (shown when a check fails)."""

    def __init__(self, name, argv, env=None, log_dir=None):
        self.name = name
        self.log_path = os.path.join(log_dir or tempfile.gettempdir(), f"{name}.log")
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.monotonic()
        self.popen = subprocess.Popen(argv, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

    def signal(self, number):
        if self.popen.poll() is None:
            self.popen.send_signal(number)

    def wait(self, timeout_s):
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired as error:
            raise CheckFailed(f"{self.name} still running after {timeout_s:g} s") from error

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._log.close()

    def tail(self, lines=15):
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode(errors="replace")


class Cleanup(contextlib.ExitStack):
    """Stops what was started, newest first; prints the logs of processes when a check failed."""

    def __init__(self, keep_dir=False):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="portfolio-containers-")
        self.processes = []
        # Called with no argument when a check failed, before anything is stopped.
        self.on_failure = []
        self.callback(lambda: keep_dir or shutil.rmtree(self.dir, ignore_errors=True))

    def start(self, name, argv, env=None):
        process = Process(name, argv, env, self.dir)
        self.processes.append(process)
        self.callback(process.kill)
        return process

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            for process in self.processes:
                print(f"--- last lines of {process.name} ({process.log_path}):\n{process.tail()}")
            for report in self.on_failure:
                report()
        return super().__exit__(kind, value, traceback)


def start_redis(cleanup, host="127.0.0.1"):
    """A private redis-server on a free port of `host`; returns its URL."""
    check(shutil.which("redis-server"), "redis-server is not installed (scripts/test.sh installs it)")
    port = free_port(host)
    cleanup.start("redis", ["redis-server", "--bind", host, "--port", str(port), "--save", "",
                            "--appendonly", "no", "--protected-mode", "no"])
    eventually("redis-server answering", 10, lambda: socket.create_connection((host, port), 1).close() or True)
    return f"redis://{host}:{port}"


def fresh_postgres_database(cleanup, server_url):
    """A new database on the test server, dropped at the end; returns its URL."""
    check(shutil.which("psql"), "psql is not installed (scripts/test.sh installs PostgreSQL)")
    name = f"portfolio_containers_{os.getpid()}_{int(time.time())}"
    psql = ["psql", "-v", "ON_ERROR_STOP=1", "-q", server_url, "-c"]
    subprocess.run(psql + [f"CREATE DATABASE {name}"], check=True)
    cleanup.callback(lambda: subprocess.run(psql + [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False))
    parts = urllib.parse.urlsplit(server_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def haproxy_frontend(socket_path, port, probe):
    """The part of every test HAProxy configuration before the frontend picks its backend: the
    admin socket (runtime API), timeouts with checks as long as the readiness probe's, no
    retries, and the frontend on `port`."""
    return f"""global
  stats socket {socket_path} mode 600 level admin
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check {probe.timeout_s}s
  retries 0
frontend service
  bind 127.0.0.1:{port}
"""


def haproxy_backend(name, ports, probe, server_prefix):
    """A backend of one server per port, health-checked on /health/ready as the readiness probe
    checks it (period, failure and success thresholds)."""
    servers = "\n".join(f"  server {server_prefix}{i} 127.0.0.1:{port} check" for i, port in enumerate(ports))
    return f"""backend {name}
  balance roundrobin
  option httpchk GET /health/ready
  default-server inter {probe.period_s}s fall {probe.failure_threshold} rise {probe.success_threshold}
{servers}
"""


class HAProxy:
    """HAProxy in front of `slots` replica ports, health-checking /health/ready the way the
    readiness probe does, so a replica takes traffic only once it is ready. No retries: a request
    that reaches a replica which cannot answer it fails, as behind a Kubernetes Service."""

    def __init__(self, cleanup, slots, probe):
        self.port = free_port()
        self.socket_path = os.path.join(cleanup.dir, "haproxy.sock")
        self.slots = slots
        config = (haproxy_frontend(self.socket_path, self.port, probe) + "  default_backend replicas\n"
                  + haproxy_backend("replicas", slots, probe, server_prefix="r"))
        path = os.path.join(cleanup.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        check(shutil.which("haproxy"), "haproxy is not installed (scripts/test.sh installs it)")
        self.process = cleanup.start("haproxy", ["haproxy", "-f", path, "-db"])
        self.url = f"http://127.0.0.1:{self.port}"
        # Servers start UP until their first check; wait until every empty slot is DOWN.
        eventually("haproxy marking the empty slots down", 15,
                   lambda: all(self.stats()[f"r{i}"]["status"] == "DOWN" for i in range(len(slots))))

    def command(self, text):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket_path)
            s.sendall(text.encode() + b"\n")
            return s.makefile().read()

    def stat_rows(self):
        """Every row of `show stat` (servers, FRONTEND and BACKEND of each proxy) as a dict."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        return [dict(zip(header, line.split(","))) for line in lines[1:] if line.strip()]

    def stats(self):
        """Per server (and FRONTEND/BACKEND): the `show stat` row as a dict."""
        return {row["svname"]: row for row in self.stat_rows()}

    def remove_endpoint(self, slot):
        """What endpoint removal does: no new request reaches the replica."""
        self.command(f"set server replicas/r{slot} state maint")

    def server_ok_responses(self, slot):
        row = self.stats()[f"r{slot}"]
        return sum(int(row[f"hrsp_{k}xx"] or 0) for k in (2, 3))

    def is_up(self, slot):
        return self.stats()[f"r{slot}"]["status"] == "UP"


def wait_ready(url, timeout_s):
    eventually(f"{url}/health/ready answering 200", timeout_s, lambda: request("GET", f"{url}/health/ready")[0] == 200)

