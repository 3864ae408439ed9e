"""Shutdown and probe timings of a rendered Kubernetes Deployment, and whether they agree.

The rollout test (rollout_test.py) drives its load balancer and its replicas with these
values, and scripts/validate-deploy.sh checks every overlay with `check`:

    python3 scripts/containers/timings.py check NAME RENDERED.yaml

Needs PyYAML; Python 3.11+ for tomllib.
"""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tomllib

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A new replica must take traffic this soon after it starts (autoscaling reacts in seconds).
TRAFFIC_WITHIN_S = 2.0


@dataclasses.dataclass(frozen=True)
class Probe:
    period_s: int
    timeout_s: int
    failure_threshold: int
    success_threshold: int

    @classmethod
    def of(cls, container, name):
        probe = container[name]
        return cls(probe.get("periodSeconds", 10), probe.get("timeoutSeconds", 1),
                   probe.get("failureThreshold", 3), probe.get("successThreshold", 1))


@dataclasses.dataclass(frozen=True)
class Timings:
    replicas: int
    max_surge: int
    max_unavailable: int
    grace_s: int
    pre_stop_s: int
    drain_delay_s: float
    shutdown_timeout_s: float
    startup: Probe
    readiness: Probe
    # Environment the ConfigMap gives the pods (what the replicas of the test get too).
    config_env: dict

    def problems(self):
        """What disagrees, as sentences; empty when everything fits."""
        found = []
        needed = self.pre_stop_s + self.drain_delay_s + self.shutdown_timeout_s
        if self.grace_s < needed:
            found.append(f"terminationGracePeriodSeconds {self.grace_s} < preStop {self.pre_stop_s} s + "
                         f"shutdown_drain_delay {self.drain_delay_s:g} s + shutdown_timeout "
                         f"{self.shutdown_timeout_s:g} s = {needed:g} s: in-flight requests would be killed")
        # A load balancer that only follows readiness must see it fail while the listener is
        # still open: failureThreshold failed probes, one period apart, within the drain.
        unready_after = self.readiness.failure_threshold * self.readiness.period_s
        if unready_after > self.drain_delay_s:
            found.append(f"readiness needs failureThreshold {self.readiness.failure_threshold} x periodSeconds "
                         f"{self.readiness.period_s} = {unready_after} s to fail, longer than shutdown_drain_delay "
                         f"{self.drain_delay_s:g} s: traffic would still arrive after the listener closes")
        for name, probe in (("startupProbe", self.startup), ("readinessProbe", self.readiness)):
            if probe.timeout_s > probe.period_s:
                found.append(f"{name}: timeoutSeconds {probe.timeout_s} > periodSeconds {probe.period_s}")
        ready_after = self.startup.period_s + self.readiness.period_s * self.readiness.success_threshold
        if ready_after > TRAFFIC_WITHIN_S:
            found.append(f"a new pod waits up to startupProbe.periodSeconds + readinessProbe.periodSeconds = "
                         f"{ready_after} s for traffic, more than {TRAFFIC_WITHIN_S:g} s")
        return found


def seconds(text):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text.strip())
    if not match:
        raise ValueError(f"not a duration in ms or s: {text!r}")
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def server_config(profile, env):
    """[server] of config/default.toml, the profile's file, then PORTFOLIO_SERVER__* variables."""
    server = {}
    for name in ("default", profile):
        path = os.path.join(REPO, "config", f"{name}.toml")
        if os.path.exists(path):
            with open(path, "rb") as f:
                server.update(tomllib.load(f).get("server", {}))
    for key, value in env.items():
        if key.startswith("PORTFOLIO_SERVER__"):
            server[key.removeprefix("PORTFOLIO_SERVER__").lower()] = value
    return server


def from_manifests(documents):
    by_kind = {}
    for doc in documents:
        if doc:
            by_kind.setdefault(doc["kind"], []).append(doc)
    (deployment,) = [d for d in by_kind["Deployment"] if d["metadata"]["name"] == "portfolio-service"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {}
    for source in container.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        for config_map in by_kind.get("ConfigMap", []):
            if name and config_map["metadata"]["name"] == name:
                env.update(config_map.get("data", {}))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
    server = server_config(env.get("PORTFOLIO_ENV", "development"), env)
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    return Timings(
        replicas=deployment["spec"]["replicas"],
        max_surge=int(strategy["maxSurge"]),
        max_unavailable=int(strategy["maxUnavailable"]),
        grace_s=pod["terminationGracePeriodSeconds"],
        pre_stop_s=container["lifecycle"]["preStop"]["sleep"]["seconds"],
        drain_delay_s=seconds(server["shutdown_drain_delay"]),
        shutdown_timeout_s=seconds(server["shutdown_timeout"]),
        startup=Probe.of(container, "startupProbe"),
        readiness=Probe.of(container, "readinessProbe"),
        config_env=env,
    )


def render(overlay):
    """The overlay rendered by kubectl kustomize (or kustomize), as YAML documents."""
    # scripts/validate-deploy.sh installs kubectl into its venv when the machine has none.
    venv_kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
    kubectl = shutil.which("kubectl") or (venv_kubectl if os.access(venv_kubectl, os.X_OK) else None)
    if kubectl:
        command = [kubectl, "kustomize", overlay]
    elif shutil.which("kustomize"):
        command = ["kustomize", "build", overlay]
    else:
        sys.exit("timings: neither kubectl nor kustomize is installed (scripts/validate-deploy.sh installs one)")
    return list(yaml.safe_load_all(subprocess.run(command, check=True, capture_output=True, text=True).stdout))


def of_overlay(name):
    return from_manifests(render(os.path.join(REPO, "deploy", "k8s", "overlays", name)))


def main(argv):
    if len(argv) != 4 or argv[1] != "check":
        sys.exit("usage: timings.py check NAME RENDERED.yaml")
    name, path = argv[2], argv[3]
    with open(path) as f:
        timings = from_manifests(yaml.safe_load_all(f))
    problems = timings.problems()
    if problems:
        sys.exit("\n".join(f"{name}: {p}" for p in problems))
    print(f"{name}: preStop {timings.pre_stop_s} s + drain {timings.drain_delay_s:g} s + shutdown "
          f"{timings.shutdown_timeout_s:g} s <= grace {timings.grace_s} s; readiness fails within "
          f"{timings.readiness.failure_threshold * timings.readiness.period_s} s of the drain; ready within "
          f"{timings.startup.period_s + timings.readiness.period_s} s")


if __name__ == "__main__":
    main(sys.argv)
