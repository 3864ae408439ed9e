"""Blue-green switches under constant load lose no request, each within a minute.

    python3 scripts/containers/blue_green_test.py [--report FILE.json]

The switch logic is scripts/k8s/blue_green.py's own `switch` and `rollback`, the code that
drives a cluster through kubectl; here it drives `ProcessDriver`: a colour's pods are processes
of the release binary (as in rollout_test.py, with the production overlay's ConfigMap and pod
timings) on PostgreSQL + Redis, and the Service is HAProxy with one backend per colour, each
health-checked like the readiness probe, and the frontend choosing the backend from a map
entry that the runtime API flips in one step, as a selector change does.

Under constant load (threads getting and creating portfolios through HAProxy, every request
recorded), three replicas of blue serve, then:
1. switch to green on a new "image" (a different configuration of the same binary), scaling
   blue down after the flip;
2. `rollback` to blue;
3. switch to green on a broken image (its database unreachable: pods that never become ready):
   the switch must fail after its ready timeout and leave traffic on blue by itself.
Asserts 0 failed requests across all of it, each switch within a minute, the broken one rolled
back with blue still serving, every replica stopped by SIGTERM exiting 0 after its drain, and
every acknowledged create readable afterwards.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import sys
import threading
import time

import harness
import timings as manifest
from harness import CheckFailed, check

sys.path.insert(0, os.path.join(harness.REPO, "scripts", "k8s"))
import blue_green  # noqa: E402 (the release tool, from its own folder)

POSTGRES_URL = os.environ.get("PORTFOLIO_TEST_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres")
REPLICAS = 3
SLOTS_PER_COLOUR = 2 * REPLICAS
LOAD_THREADS = 6
SWITCH_WITHIN_S = 60.0
BROKEN_READY_TIMEOUT_S = 15.0
STEADY_S = 3.0
# "Images": configurations of the same binary, told apart in the replicas' logs and banner.
IMAGES = {
    "release-1": {"OTEL_SERVICE_VERSION": "release-1"},
    "release-2": {"OTEL_SERVICE_VERSION": "release-2"},
    # A release whose configuration points at a database that is not there: it starts, answers
    # liveness, and never becomes ready (docs/OPERATIONS.md, "Dependencies down at start").
    "broken": {"OTEL_SERVICE_VERSION": "broken", "PORTFOLIO_DATABASE_URL": "postgres://postgres@127.0.0.1:9/none"},
}


def now_ms():
    return time.time() * 1000


class BlueGreenHAProxy:
    """HAProxy as the Service: a backend per colour, the live one named by a runtime map entry."""

    def __init__(self, cleanup, probe):
        self.cleanup = cleanup
        self.port = harness.free_port()
        self.socket_path = os.path.join(cleanup.dir, "haproxy.sock")
        self.map_path = os.path.join(cleanup.dir, "live.map")
        with open(self.map_path, "w") as f:
            f.write("live blue\n")
        ports = set()
        while len(ports) < 2 * SLOTS_PER_COLOUR:
            ports.add(harness.reserved_port())
        ports = sorted(ports)
        self.slots = {colour: ports[i * SLOTS_PER_COLOUR:(i + 1) * SLOTS_PER_COLOUR]
                      for i, colour in enumerate(blue_green.COLOURS)}
        config = (harness.haproxy_frontend(self.socket_path, self.port, probe)
                  + f"  use_backend %[str(live),map({self.map_path})]\n"
                  + "".join(harness.haproxy_backend(colour, slot_ports, probe, server_prefix="s")
                            for colour, slot_ports in self.slots.items()))
        path = os.path.join(cleanup.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        check(shutil.which("haproxy"), "haproxy is not installed (scripts/test.sh installs it)")
        cleanup.start("haproxy", ["haproxy", "-f", path, "-db"])
        self.url = f"http://127.0.0.1:{self.port}"
        harness.eventually("haproxy marking the empty slots down", 15, lambda: all(
            row["status"] == "DOWN" for name, row in self.stats().items() if name[1] != "FRONTEND"
            and name[1] != "BACKEND"))

    command = harness.HAProxy.command
    stat_rows = harness.HAProxy.stat_rows

    def stats(self):
        """(proxy, server) -> the `show stat` row."""
        return {(row["pxname"], row["svname"]): row for row in self.stat_rows()}

    def live(self):
        for line in self.command(f"show map {self.map_path}").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "live":
                return parts[2]
        raise CheckFailed(f"no live entry in {self.map_path}")

    def point_at(self, colour):
        answer = self.command(f"set map {self.map_path} live {colour}").strip()
        check(not answer, f"haproxy refused to flip the map: {answer}")

    def is_up(self, colour, slot):
        return self.stats()[(colour, f"s{slot}")]["status"] == "UP"

    def up_slots(self, colour):
        stats = self.stats()
        return {slot for slot in range(SLOTS_PER_COLOUR) if stats[(colour, f"s{slot}")]["status"] == "UP"}

    def remove_endpoint(self, colour, slot):
        self.command(f"set server {colour}/s{slot} state maint")


class Pod:
    def __init__(self, colour, slot, image, process):
        self.colour, self.slot, self.image, self.process = colour, slot, image, process


class ProcessDriver:
    """blue_green's driver interface over processes and BlueGreenHAProxy."""

    def __init__(self, cleanup, pod_timings, env, initial_image):
        self.cleanup, self.timings, self.env = cleanup, pod_timings, env
        self.lb = BlueGreenHAProxy(cleanup, pod_timings.readiness)
        self.images = {colour: initial_image for colour in blue_green.COLOURS}
        self.replicas = {colour: 0 for colour in blue_green.COLOURS}
        self.pods = {colour: [] for colour in blue_green.COLOURS}
        self.next_slot = {colour: 0 for colour in blue_green.COLOURS}
        self.terminations = []
        self.lock = threading.Lock()

    # The driver interface (blue_green.py).
    def live(self):
        return self.lb.live()

    def state(self, colour):
        return blue_green.ColourState(self.images[colour], self.replicas[colour])

    def set_image(self, colour, image):
        self.images[colour] = image
        # A Deployment rolls its pods onto the new template; an idle colour has none to roll.
        for pod in list(self.pods[colour]):
            self.terminate(pod)
        self.fill(colour)

    def scale(self, colour, replicas):
        self.replicas[colour] = replicas
        while len(self.pods[colour]) > replicas:
            self.terminate(self.pods[colour][-1])
        self.fill(colour)

    def progress(self, colour):
        up = self.lb.up_slots(colour)
        ready = sum(1 for pod in self.pods[colour] if pod.image == self.images[colour] and pod.slot in up)
        with self.lock:
            existing = len(self.pods[colour]) + sum(
                1 for pod, outcome in self.terminations if pod.colour == colour and "exited_ms" not in outcome)
        return blue_green.Progress(self.replicas[colour], ready, existing)

    def point_service(self, colour):
        self.lb.point_at(colour)

    def serving_problem(self, colour, wanted):
        live = self.lb.live()
        if live != colour:
            return f"the Service still sends to {live}"
        up = len(self.lb.up_slots(colour))
        return None if up >= wanted else f"{up} of {wanted} {colour} pods are UP behind the Service"

    def check_traffic(self, count):
        for attempt in range(count):
            status, _ = harness.request("GET", f"{self.lb.url}/health/ready")
            if status != 200:
                raise blue_green.DriverError(f"health request {attempt + 1} of {count} through the Service: {status}")

    # Pods.
    def fill(self, colour):
        while len(self.pods[colour]) < self.replicas[colour]:
            slot = self.next_slot[colour]
            check(slot < SLOTS_PER_COLOUR, f"{colour}: no free HAProxy slot left")
            self.next_slot[colour] += 1
            port = self.lb.slots[colour][slot]
            env = dict(self.env, PORTFOLIO_PORT=str(port), **IMAGES[self.images[colour]])
            process = self.cleanup.start(f"{colour}-{slot}-{self.images[colour]}", [harness.BINARY, "serve"], env)
            self.pods[colour].append(Pod(colour, slot, self.images[colour], process))

    def terminate(self, pod):
        """Pod deletion, in a thread: endpoint removal, preStop sleep, SIGTERM, exit."""
        self.pods[pod.colour].remove(pod)
        outcome = {"pod": f"{pod.colour}-{pod.slot}"}

        def run():
            self.lb.remove_endpoint(pod.colour, pod.slot)
            time.sleep(self.timings.pre_stop_s)
            outcome["sigterm_ms"] = now_ms()
            pod.process.signal(signal.SIGTERM)
            try:
                outcome["exit_code"] = pod.process.wait(self.timings.grace_s - self.timings.pre_stop_s)
            except CheckFailed as error:
                outcome["error"] = str(error)
                pod.process.kill()
            with self.lock:
                outcome["exited_ms"] = now_ms()

        thread = threading.Thread(target=run)
        with self.lock:
            self.terminations.append((pod, outcome))
        thread.start()

    def check_terminations(self):
        """Every pod stopped so far exited 0 after its drain, within its grace period."""
        harness.eventually("every terminated replica gone", self.timings.grace_s + 5, lambda: all(
            "exited_ms" in outcome for _, outcome in self.terminations))
        for pod, outcome in self.terminations:
            name = outcome["pod"]
            check("error" not in outcome, f"{name}: {outcome.get('error')} (killed after the grace period)")
            if pod.image == "broken":
                continue  # never ready, so nothing to drain; it must still stop within the grace period
            check(outcome["exit_code"] == 0, f"{name} exited with {outcome['exit_code']} after SIGTERM")
            drained_s = (outcome["exited_ms"] - outcome["sigterm_ms"]) / 1000
            check(drained_s >= self.timings.drain_delay_s - 0.1,
                  f"{name} exited {drained_s:.1f} s after SIGTERM, before its {self.timings.drain_delay_s:g} s drain")
        return len(self.terminations)


class ConstantLoad:
    """Threads getting (90 %) and creating (10 %) portfolios through the Service, each request
    recorded as (start ms, status or error)."""

    def __init__(self, url, ids):
        self.url = url
        self.ids = list(ids)
        self.records = []
        self.created = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(LOAD_THREADS)]
        for thread in self.threads:
            thread.start()

    def run(self, n):
        host, port = self.url.removeprefix("http://").split(":")
        connection = None
        i = n
        while not self.stop.is_set():
            i += LOAD_THREADS
            create = i % 10 == 0
            started = now_ms()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(host, int(port), timeout=10)
                if create:
                    connection.request("POST", "/api/v1/portfolios", body=json.dumps({"name": f"Blue Green {i}"}),
                                       headers={"content-type": "application/json"})
                else:
                    connection.request("GET", f"/api/v1/portfolio/{self.ids[i % len(self.ids)]}")
                response = connection.getresponse()
                body = response.read()
                outcome = response.status
                if create and outcome == 201:
                    with self.lock:
                        self.created.append(json.loads(body)["portfolioId"])
                if response.getheader("connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                outcome = f"{type(error).__name__}: {error}"
                if connection is not None:
                    connection.close()
                connection = None
            with self.lock:
                self.records.append((started, outcome))

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def window(self, start_ms, end_ms):
        with self.lock:
            chosen = [outcome for started, outcome in self.records if start_ms <= started < end_ms]
        failed = [outcome for outcome in chosen if not (isinstance(outcome, int) and 200 <= outcome < 400)]
        return {"requests": len(chosen), "failed": len(failed), "failures": sorted({str(f) for f in failed})[:5]}


def run_step(name, load, action):
    """Runs action() under the load; returns its timings and the requests that ran meanwhile."""
    print(f"\n==> {name}", flush=True)
    began = now_ms()
    outcome = action()
    ended = now_ms()
    time.sleep(1)  # requests sent just after the step still count against it
    window = load.window(began, now_ms())
    seconds = (ended - began) / 1000
    print(f"{name}: {seconds:.1f} s; {window['requests']} requests, {window['failed']} failed", flush=True)
    return {"step": name, "seconds": round(seconds, 1), **window, **(outcome or {})}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", help="write the figures as JSON to this file")
    args = parser.parse_args()
    pod = manifest.of_overlay("production")
    check(not pod.problems(), f"the production overlay's timings disagree: {pod.problems()}")
    started = time.monotonic()
    steps = []
    with harness.Cleanup() as cleanup:
        database_url = harness.fresh_postgres_database(cleanup, POSTGRES_URL)
        redis_url = harness.start_redis(cleanup)
        migrate = cleanup.start("migrate", [harness.BINARY, "migrate", "up"], {"PORTFOLIO_DATABASE_URL": database_url})
        check(migrate.wait(60) == 0, "migrate up failed")
        env = dict(pod.config_env, PORTFOLIO_HOST="127.0.0.1", PORTFOLIO_DATABASE_URL=database_url,
                   PORTFOLIO_REDIS_URL=redis_url, PORTFOLIO_AUTH__ENABLED="false")
        driver = ProcessDriver(cleanup, pod, env, "release-1")
        limits = blue_green.Limits(ready_timeout_s=SWITCH_WITHIN_S, verify_timeout_s=10, poll_s=0.2,
                                   scale_down_timeout_s=pod.grace_s + 5)

        def log(line):
            print(f"  blue_green: {line}", flush=True)

        # Blue comes up as a first install does: its pods ready before the Service has endpoints.
        driver.scale("blue", REPLICAS)
        harness.eventually("blue's 3 pods ready", 30, lambda: driver.progress("blue").complete, 0.2)
        ids = []
        for n in range(50):
            status, body = harness.request("POST", f"{driver.lb.url}/api/v1/portfolios", {"name": f"Seed {n}"})
            check(status == 201, f"seeding: {status} {body}")
            ids.append(body["portfolioId"])
        load = ConstantLoad(driver.lb.url, ids)
        cleanup.callback(load.finish)
        time.sleep(STEADY_S)
        steady = load.window(0, now_ms())
        check(steady["requests"] >= 50 and steady["failed"] == 0, f"steady load before any switch: {steady}")
        print(f"steady: {steady['requests']} requests in {STEADY_S:g} s, 0 failed", flush=True)

        steps.append(run_step("switch blue -> green (image release-2)", load, lambda: blue_green.switch(
            driver, "green", image="release-2", limits=limits, log=log)))
        check(driver.live() == "green" and driver.state("blue").replicas == 0, "green is not the only live colour")
        steps.append(run_step("rollback green -> blue", load, lambda: blue_green.rollback(
            driver, limits=limits, log=log)))
        check(driver.live() == "blue" and driver.state("blue").image == "release-1", "rollback did not restore blue")

        def broken_switch():
            broken_limits = blue_green.Limits(ready_timeout_s=BROKEN_READY_TIMEOUT_S, verify_timeout_s=10,
                                              poll_s=0.2, scale_down_timeout_s=pod.grace_s + 5)
            try:
                blue_green.switch(driver, "green", image="broken", limits=broken_limits, log=log)
            except blue_green.SwitchFailed as failure:
                return {"rolled_back": str(failure)}
            raise CheckFailed("the switch to a release that never becomes ready succeeded")

        steps.append(run_step("switch to a broken green (rolls back by itself)", load, broken_switch))
        check(driver.live() == "blue", "the failed switch left the Service off blue")
        check(driver.state("green") == blue_green.ColourState("release-2", 0),
              f"green not restored after the failed switch: {driver.state('green')}")
        time.sleep(2)
        after = load.window(now_ms() - 2000, now_ms())
        check(after["requests"] > 0 and after["failed"] == 0, f"blue not serving after the failed switch: {after}")
        load.finish()

        total = load.window(0, now_ms())
        print(f"\nall steps: {total['requests']} requests, {total['failed']} failed", flush=True)
        check(total["failed"] == 0, f"{total['failed']} failed requests, e.g. {total['failures']}")
        for step in steps:
            check(step["failed"] == 0, f"{step['step']}: {step['failed']} failed requests ({step['failures']})")
            check(step["seconds"] <= SWITCH_WITHIN_S, f"{step['step']} took {step['seconds']} s (> {SWITCH_WITHIN_S:g} s)")
        stopped = driver.check_terminations()
        missing = [i for i in load.created if harness.request("GET", f"{driver.lb.url}/api/v1/portfolio/{i}")[0] != 200]
        check(load.created and not missing, f"{len(missing)} of {len(load.created)} acknowledged creates missing")
    report = {"replicas": REPLICAS, "pods": "processes", "service": "haproxy (a backend per colour, map flip)",
              "steps": steps, "requests": total["requests"], "failed": total["failed"],
              "replicas_stopped": stopped, "acknowledged_creates_verified": len(load.created),
              "wall_s": round(time.monotonic() - started, 1)}
    print_report(report)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)


def print_report(report):
    print("\n| step | seconds | ready s | flip s | old gone s | requests | failed |\n|---|---|---|---|---|---|---|")
    for step in report["steps"]:
        cells = [step.get(key) for key in ("ready_s", "flip_s", "old_gone_s")]
        cells = ["" if c is None else f"{c:.1f}" for c in cells]
        print(f"| {step['step']} | {step['seconds']} | {' | '.join(cells)} | {step['requests']} | {step['failed']} |")
    print(f"{report['requests']} requests in all, {report['failed']} failed; {report['replicas_stopped']} replicas "
          f"stopped cleanly; {report['acknowledged_creates_verified']} acknowledged creates read back; "
          f"wall time {report['wall_s']} s")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        sys.exit(f"blue-green test FAILED: {failure}")
