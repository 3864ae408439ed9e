"""Rolling updates and a scale-out under constant load lose no request.

    python3 scripts/containers/rollout_test.py [--report FILE.json]

Replicas are processes of the release binary (target/release/portfolio-service, the binary the
image carries; processes because containers would cost the 2 cores of CI more than they prove
here, and image_test.py runs the image itself) on PostgreSQL + Redis, the production setup, with
the production overlay's ConfigMap as their environment. HAProxy plays the Kubernetes Service:
it health-checks /health/ready with the readiness probe's period, timeout and thresholds from the
rendered overlay (timings.py), so a replica takes traffic once ready and no retry hides a failure.
The load is `portfolio-service bench run --scenario mixed` (70 % gets, 20 % pages, 10 % creates)
through HAProxy, recording every request.

- Two rolls replace the three replicas one by one as a Deployment controller does: with
  maxSurge 0 / maxUnavailable 1 (terminate one, start its replacement, wait until it is ready,
  next) and with the manifest's own strategy. Terminating a replica follows the pod's timings:
  its endpoint is removed, the preStop sleep passes, then SIGTERM; it must drain and exit 0
  within the rest of terminationGracePeriodSeconds.
- A scale-out from 1 to 3 replicas: each new replica must answer requests within 2 s of starting.

Asserts 0 failed requests, every acknowledged create readable afterwards (through a fresh
replica with its cache off), and p99 during each roll within 3x the steady p99.
"""

import argparse
import concurrent.futures
import csv
import http.client
import json
import os
import signal
import sys
import threading
import time

import harness
import timings as manifest
from harness import CheckFailed, check

POSTGRES_URL = os.environ.get("PORTFOLIO_TEST_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres")
CONCURRENCY = 8
STEADY_S, AFTER_S = 6, 6
P99_FACTOR = 3.0


def now_ms():
    return time.time() * 1000


class Replica:
    def __init__(self, slot, process, started_ms):
        self.slot, self.process, self.started_ms = slot, process, started_ms


class Cluster:
    """Replicas on the slots of one HAProxy backend; each replica gets a slot of its own."""

    def __init__(self, cleanup, pod, database_url, redis_url, slots):
        self.cleanup, self.pod = cleanup, pod
        ports = set()
        while len(ports) < slots:
            ports.add(harness.reserved_port())
        self.lb = harness.HAProxy(cleanup, sorted(ports), pod.readiness)
        self.env = dict(pod.config_env)
        self.env.update({
            "PORTFOLIO_HOST": "127.0.0.1",
            "PORTFOLIO_DATABASE_URL": database_url,
            "PORTFOLIO_REDIS_URL": redis_url,
            # Production turns authentication on; the load driver sends no credentials.
            "PORTFOLIO_AUTH__ENABLED": "false",
        })
        self.next_slot = 0
        self.live = []

    def start(self):
        slot, self.next_slot = self.next_slot, self.next_slot + 1
        env = dict(self.env, PORTFOLIO_PORT=str(self.lb.slots[slot]))
        process = self.cleanup.start(f"replica-{slot}", [harness.BINARY, "serve"], env)
        replica = Replica(slot, process, now_ms())
        self.live.append(replica)
        return replica

    def wait_ready(self, replica):
        """Until the load balancer routes to it, as a Deployment waits for Ready; ms after start."""
        harness.eventually(f"replica {replica.slot} ready behind the load balancer", 30,
                           lambda: self.lb.is_up(replica.slot), 0.05)
        return now_ms() - replica.started_ms

    def first_traffic_ms(self, replica, timeout_s=10):
        harness.eventually(f"replica {replica.slot} answering traffic", timeout_s,
                           lambda: self.lb.server_ok_responses(replica.slot) > 0, 0.05)
        return now_ms() - replica.started_ms

    def terminate(self, replica):
        """Pod deletion in a thread: endpoint removal, preStop sleep, SIGTERM, exit."""
        self.live.remove(replica)
        outcome = {"slot": replica.slot}

        def run():
            outcome["endpoint_removed_ms"] = now_ms()
            self.lb.remove_endpoint(replica.slot)
            time.sleep(self.pod.pre_stop_s)
            outcome["sigterm_ms"] = now_ms()
            replica.process.signal(signal.SIGTERM)
            try:
                outcome["exit_code"] = replica.process.wait(self.pod.grace_s - self.pod.pre_stop_s)
            except CheckFailed as error:
                outcome["error"] = str(error)
            outcome["exited_ms"] = now_ms()

        thread = threading.Thread(target=run)
        thread.start()
        return thread, outcome


def check_terminations(pod, terminations):
    for thread, outcome in terminations:
        thread.join()
        slot = outcome["slot"]
        check("error" not in outcome, f"replica {slot}: {outcome.get('error')} (killed after the grace period)")
        check(outcome["exit_code"] == 0, f"replica {slot} exited with {outcome['exit_code']} after SIGTERM")
        drained_s = (outcome["exited_ms"] - outcome["sigterm_ms"]) / 1000
        check(drained_s >= pod.drain_delay_s - 0.1, f"replica {slot} exited {drained_s:.1f} s after SIGTERM, "
              f"before its {pod.drain_delay_s:g} s drain")
    return [outcome for _, outcome in terminations]


class Load:
    """`bench run --scenario mixed` through the load balancer, every request recorded."""

    def __init__(self, cleanup, cluster, name, duration_s):
        self.record = os.path.join(cleanup.dir, f"{name}.csv")
        self.summary = os.path.join(cleanup.dir, f"{name}.json")
        self.duration_s = duration_s
        warmup = 10
        before = int(cluster.lb.stats()["FRONTEND"]["req_tot"] or 0)
        self.process = cleanup.start(f"bench-{name}", [
            harness.BINARY, "bench", "run", "--url", cluster.lb.url, "--scenario", "mixed",
            "--duration", f"{duration_s}s", "--concurrency", str(CONCURRENCY), "--warmup", str(warmup),
            "--pool", "200", "--label", name, "--record", self.record, "--out", self.summary])
        # Measuring starts after the pool read (and seeding) and the warm-up requests.
        harness.eventually("the load driver past its warm-up", 60, lambda: int(
            cluster.lb.stats()["FRONTEND"]["req_tot"] or 0) - before > warmup * CONCURRENCY + 5, 0.05)
        self.measuring_from_ms = now_ms()

    def finish(self):
        code = self.process.wait(self.duration_s + 60)
        check(code == 0, f"bench run exited with {code}")
        with open(self.summary) as f:
            summary = json.loads(f.readline())
        with open(self.record) as f:
            rows = list(csv.DictReader(f))
        check(len(rows) == summary["requests"], f"{len(rows)} requests recorded, bench counted {summary['requests']}")
        return summary, rows


def phase(rows, name, start_ms, end_ms):
    chosen = [r for r in rows if start_ms <= float(r["start_unix_ms"]) < end_ms]
    latencies = [int(r["latency_us"]) / 1000 for r in chosen]
    failed = [r for r in chosen if not 200 <= int(r["status"]) < 400]
    return {"phase": name, "requests": len(chosen), "failed": len(failed),
            "statuses": sorted({r["status"] for r in failed}), "seconds": round((end_ms - start_ms) / 1000, 1),
            "p50_ms": round(harness.percentile(latencies, 50), 2),
            "p99_ms": round(harness.percentile(latencies, 99), 2)}


def split(rows, before, began_ms, ended_ms, after):
    last = max(float(r["start_unix_ms"]) for r in rows) + 1
    first = min(float(r["start_unix_ms"]) for r in rows)
    phases = [phase(rows, before, first, began_ms), phase(rows, "during", began_ms, ended_ms),
              phase(rows, after, ended_ms, last)]
    for p in (phases[0], phases[2]):
        check(p["requests"] >= 100 and p["seconds"] >= 2,
              f"phase {p['phase']} too short to measure ({p['requests']} requests in {p['seconds']} s): "
              "the load ended before the change did")
    check(phases[1]["requests"] > 0, "no request was sent while the change ran")
    return phases


def check_no_failures(name, summary, phases):
    failed = sum(p["failed"] for p in phases)
    check(summary["errors"] == 0 and failed == 0, f"{name}: {summary['errors']} failed requests "
          f"(statuses {[p['statuses'] for p in phases]})")


def roll(cleanup, cluster, pod, surge, unavailable):
    name = f"roll maxSurge {surge} maxUnavailable {unavailable}"
    print(f"\n==> {name}, {len(cluster.live)} replicas under load", flush=True)
    budget_s = len(cluster.live) * manifest.TRAFFIC_WITHIN_S + pod.pre_stop_s + pod.drain_delay_s + 4
    load = Load(cleanup, cluster, f"roll-{surge}-{unavailable}", STEADY_S + budget_s + AFTER_S)
    time.sleep(STEADY_S)
    began = now_ms()
    terminations, ready = [], []
    for old in list(cluster.live):
        if surge == 0:
            terminations.append(cluster.terminate(old))
        new = cluster.start()
        ready.append(cluster.wait_ready(new))
        if surge:
            terminations.append(cluster.terminate(old))
    outcomes = check_terminations(pod, terminations)
    ended = now_ms()
    summary, rows = load.finish()
    phases = split(rows, "steady", began, ended, "after")
    check_no_failures(name, summary, phases)
    steady, during = phases[0], phases[1]
    check(during["p99_ms"] <= P99_FACTOR * steady["p99_ms"],
          f"{name}: p99 {during['p99_ms']} ms during the roll > {P99_FACTOR:g} x steady p99 {steady['p99_ms']} ms")
    drains = [round((o["exited_ms"] - o["sigterm_ms"]) / 1000, 2) for o in outcomes]
    return {"name": name, "phases": phases, "ready_after_start_s": [round(r / 1000, 2) for r in ready],
            "exit_after_sigterm_s": drains, "rows": rows}


def scale_out(cleanup, cluster, pod, to):
    name = f"scale {len(cluster.live)} -> {to}"
    print(f"\n==> {name} under load", flush=True)
    load = Load(cleanup, cluster, "scale-out", STEADY_S + manifest.TRAFFIC_WITHIN_S + 2 + AFTER_S)
    time.sleep(STEADY_S)
    began = now_ms()
    news = [cluster.start() for _ in range(to - len(cluster.live))]
    traffic = [cluster.first_traffic_ms(new) for new in news]
    ended = now_ms()
    summary, rows = load.finish()
    phases = split(rows, "1 replica", began, ended, f"{to} replicas")
    check_no_failures(name, summary, phases)
    for seconds in traffic:
        check(seconds / 1000 <= manifest.TRAFFIC_WITHIN_S,
              f"{name}: a new replica answered its first request {seconds / 1000:.2f} s after it started")
    return {"name": name, "phases": phases, "traffic_after_start_s": [round(t / 1000, 2) for t in traffic],
            "rows": rows}


def verify_acknowledged_creates(cleanup, cluster, runs):
    """Every create answered 2xx, read back through a fresh replica that caches nothing."""
    ids = [r["created_id"] for run in runs for r in run["rows"]
           if r["kind"] == "create" and r["status"].startswith("2")]
    check(ids, "no create was acknowledged: the load did not write")
    port = harness.free_port()
    env = dict(cluster.env, PORTFOLIO_PORT=str(port), PORTFOLIO_CACHE__ENABLED="false")
    cleanup.start("verifier", [harness.BINARY, "serve"], env)
    harness.wait_ready(f"http://127.0.0.1:{port}", 30)
    local = threading.local()

    def present(portfolio_id):
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local.connection.request("GET", f"/api/v1/portfolio/{portfolio_id}")
        response = local.connection.getresponse()
        response.read()
        return response.status == 200

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        missing = [i for i, ok in zip(ids, pool.map(present, ids)) if not ok]
    check(not missing, f"{len(missing)} of {len(ids)} acknowledged creates are missing, e.g. {missing[:3]}")
    return len(ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", help="write the figures as JSON to this file")
    args = parser.parse_args()
    pod = manifest.of_overlay("production")
    check(not pod.problems(), f"the production overlay's timings disagree: {pod.problems()}")
    # The strategy that drops capacity by one, and the manifest's own when it differs.
    manifest_strategy = (pod.max_surge, pod.max_unavailable)
    strategies = [(0, 1)] + ([manifest_strategy] if manifest_strategy != (0, 1) else [])
    for surge, unavailable in strategies:
        check((surge, unavailable) in ((0, 1), (1, 0)), f"strategy maxSurge {surge} maxUnavailable {unavailable} "
              "is not one this test can play")
    started = time.monotonic()
    with harness.Cleanup() as cleanup:
        database_url = harness.fresh_postgres_database(cleanup, POSTGRES_URL)
        redis_url = harness.start_redis(cleanup)
        migrate = cleanup.start("migrate", [harness.BINARY, "migrate", "up"], {"PORTFOLIO_DATABASE_URL": database_url})
        check(migrate.wait(60) == 0, "migrate up failed")
        slots = pod.replicas * (1 + len(strategies)) + 2
        cluster = Cluster(cleanup, pod, database_url, redis_url, slots)
        for replica in [cluster.start() for _ in range(pod.replicas)]:
            cluster.wait_ready(replica)
        runs = [roll(cleanup, cluster, pod, surge, unavailable) for surge, unavailable in strategies]
        print("\n==> down to 1 replica (no load)", flush=True)
        check_terminations(pod, [cluster.terminate(r) for r in cluster.live[1:]])
        runs.append(scale_out(cleanup, cluster, pod, pod.replicas))
        verified = verify_acknowledged_creates(cleanup, cluster, runs)
    report = {"replicas": "processes", "backend": "postgres + redis", "concurrency": CONCURRENCY,
              "acknowledged_creates_verified": verified, "wall_s": round(time.monotonic() - started, 1),
              "runs": [{k: v for k, v in run.items() if k != "rows"} for run in runs]}
    print_report(report)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)


def print_report(report):
    print("\n| run | phase | seconds | requests | failed | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|")
    for run in report["runs"]:
        for p in run["phases"]:
            print(f"| {run['name']} | {p['phase']} | {p['seconds']} | {p['requests']} | {p['failed']} | "
                  f"{p['p50_ms']} | {p['p99_ms']} |")
    for run in report["runs"]:
        extra = {k: v for k, v in run.items() if k not in ("name", "phases")}
        print(f"{run['name']}: {extra}")
    print(f"acknowledged creates read back: {report['acknowledged_creates_verified']}, 0 missing; "
          f"wall time {report['wall_s']} s")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        sys.exit(f"rollout test FAILED: {failure}")
