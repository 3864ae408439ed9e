"""Checks of rendered Kubernetes manifests that no schema makes (run by scripts/validate-deploy.sh).

    python3 scripts/k8s/manifests.py selectors NAME RENDERED.yaml
    python3 scripts/k8s/manifests.py autoscaling NAME RENDERED.yaml
    python3 scripts/k8s/manifests.py blue-green NAME RENDERED.yaml

selectors: every selector matches the pods it is meant for, and only those. A Deployment's
selector, spread constraints and anti-affinity select its own pods and no other Deployment's;
each Service, PodDisruptionBudget and HorizontalPodAutoscaler covers exactly one Deployment,
and each Deployment has exactly one PDB and one HPA. A selector naming a label the pod template
lacks selects nothing and fails silently; one that spans the blue and the green colour would
send traffic to both, or let a disruption budget count the idle colour.

autoscaling: every HPA scales on CPU and on memory utilization (as the suite's own chart does),
and its target's requests follow the measured footprint in the Deployment's annotations
(`portfolio.globeco.example/measured-*`, written by scripts/measure-footprint.sh and asserted
by it): the memory target (request x averageUtilization) sits above the measured peak RSS, so
the standard load never scales out on memory (memory does not shrink after load, so such a
scale-out would never scale back), and below the limit, so the HPA acts before the OOM killer;
the peak fits in the request; idle CPU stays under the CPU target.

blue-green: an overlay rendered with deploy/k8s/components/blue-green has the Deployments
NAME-blue and NAME-green, alike but for their name, slot label and replica count (green starts
at 0), and the Service selects the blue slot.

Needs PyYAML.
"""

import copy
import re
import sys

import yaml

FOOTPRINT = "portfolio.globeco.example/measured-"
SLOT_LABEL = "app.kubernetes.io/slot"


def mebibytes(quantity):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi)", str(quantity))
    if not match:
        raise ValueError(f"not a memory quantity in Ki, Mi or Gi: {quantity!r}")
    return float(match.group(1)) * units[match.group(2)]


def millicores(quantity):
    text = str(quantity)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def by_kind(documents, kind):
    return {d["metadata"]["name"]: d for d in documents if d and d["kind"] == kind}


def selector_problems(documents):
    deployments = by_kind(documents, "Deployment")
    pods = {n: d["spec"]["template"]["metadata"].get("labels", {}) for n, d in deployments.items()}
    problems = []
    for n, d in deployments.items():
        spec = d["spec"]["template"]["spec"]
        selectors = [("spec.selector", d["spec"]["selector"]["matchLabels"])]
        selectors += [(f"spread over {c['topologyKey']}", c["labelSelector"].get("matchLabels"))
                      for c in spec.get("topologySpreadConstraints", [])]
        selectors += [("anti-affinity", t["podAffinityTerm"]["labelSelector"].get("matchLabels"))
                      for t in spec.get("affinity", {}).get("podAntiAffinity", {}).get(
                          "preferredDuringSchedulingIgnoredDuringExecution", [])]
        for what, selector in selectors:
            if not matches(selector, pods[n]):
                problems.append(f"Deployment {n}: {what} selects {selector}, not its pods")
        for other, labels in pods.items():
            if other != n and matches(d["spec"]["selector"]["matchLabels"], labels):
                problems.append(f"Deployment {n}: spec.selector also selects Deployment {other}'s pods")

    def covered(kind, name, selector):
        chosen = sorted(n for n, labels in pods.items() if matches(selector, labels))
        if len(chosen) != 1:
            problems.append(f"{kind} {name}: selector {selector} selects the pods of "
                            f"{len(chosen)} Deployments ({', '.join(chosen) or 'none'}), not exactly one")
        return chosen

    for name, service in by_kind(documents, "Service").items():
        covered("Service", name, service["spec"].get("selector"))
    budgets = {name: covered("PodDisruptionBudget", name, pdb["spec"]["selector"]["matchLabels"])
               for name, pdb in by_kind(documents, "PodDisruptionBudget").items()}
    scalers = {}
    for name, hpa in by_kind(documents, "HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] != "Deployment" or target["name"] not in deployments:
            problems.append(f"HorizontalPodAutoscaler {name}: scales {target['kind']}/{target['name']}, "
                            "which is not rendered")
        scalers[name] = [target["name"]]
    for n in deployments:
        for kind, owners in (("PodDisruptionBudget", budgets), ("HorizontalPodAutoscaler", scalers)):
            mine = sorted(name for name, targets in owners.items() if n in targets)
            if len(mine) != 1:
                problems.append(f"Deployment {n}: {len(mine)} {kind}s ({', '.join(mine) or 'none'}), not exactly one")
    return problems


def autoscaling_problems(documents):
    deployments = by_kind(documents, "Deployment")
    problems = []
    for name, hpa in by_kind(documents, "HorizontalPodAutoscaler").items():
        targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"].get("metrics", [])
                   if m["type"] == "Resource"}
        unscaled = [resource for resource in ("cpu", "memory") if targets.get(resource, {}).get("type") != "Utilization"
                    or "averageUtilization" not in targets[resource]]
        for resource in unscaled:
            problems.append(f"HorizontalPodAutoscaler {name}: no {resource} averageUtilization target")
        deployment = deployments.get(hpa["spec"]["scaleTargetRef"]["name"])
        if deployment is None or unscaled:
            continue
        resources = deployment["spec"]["template"]["spec"]["containers"][0].get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        if not {"cpu", "memory"} <= requests.keys() or "memory" not in limits:
            problems.append(f"Deployment {deployment['metadata']['name']}: needs cpu and memory requests and a "
                            "memory limit for utilization targets")
            continue
        annotations = deployment["metadata"].get("annotations", {})
        measured = {key.removeprefix(FOOTPRINT): value for key, value in annotations.items()
                    if key.startswith(FOOTPRINT)}
        missing = {"idle-rss", "peak-rss", "idle-cpu"} - measured.keys()
        if missing:
            problems.append(f"Deployment {deployment['metadata']['name']}: no measured footprint "
                            f"({', '.join(f'{FOOTPRINT}{m}' for m in sorted(missing))})")
            continue
        request, limit = mebibytes(requests["memory"]), mebibytes(limits["memory"])
        memory_target = request * targets["memory"]["averageUtilization"] / 100
        peak, idle = mebibytes(measured["peak-rss"]), mebibytes(measured["idle-rss"])
        cpu_target = millicores(requests["cpu"]) * targets["cpu"]["averageUtilization"] / 100
        where = f"HorizontalPodAutoscaler {name}"
        if memory_target >= limit:
            problems.append(f"{where}: memory target {memory_target:g} MiB (request {requests['memory']} x "
                            f"{targets['memory']['averageUtilization']}%) is not below the limit {limits['memory']}: "
                            "the pod is killed before the HPA scales")
        if peak > request:
            problems.append(f"{where}: measured peak RSS {measured['peak-rss']} exceeds the memory request "
                            f"{requests['memory']}")
        if peak >= memory_target:
            problems.append(f"{where}: measured peak RSS {measured['peak-rss']} reaches the memory target "
                            f"{memory_target:g} MiB: the standard load would scale out on memory and never back")
        if idle >= memory_target:
            problems.append(f"{where}: idle RSS {measured['idle-rss']} reaches the memory target {memory_target:g} MiB")
        if millicores(measured["idle-cpu"]) >= cpu_target:
            problems.append(f"{where}: idle CPU {measured['idle-cpu']} reaches the CPU target {cpu_target:g}m")
    return problems


def blue_green_problems(documents, name="portfolio-service"):
    deployments = by_kind(documents, "Deployment")
    expected = [f"{name}-blue", f"{name}-green"]
    if sorted(deployments) != expected:
        return [f"Deployments {sorted(deployments)}, expected {' and '.join(expected)}"]
    problems = []
    service = by_kind(documents, "Service").get(name)
    if service is None or service["spec"].get("selector", {}).get(SLOT_LABEL) != "blue":
        problems.append(f"the Service {name} does not select {SLOT_LABEL}=blue when first applied")
    blue, green = (copy.deepcopy(deployments[n]) for n in expected)
    if green["spec"].get("replicas") != 0:
        problems.append(f"green starts with {green['spec'].get('replicas')} replicas, not 0")
    for deployment, colour in ((blue, "blue"), (green, "green")):
        for where, labels in (("metadata.labels", deployment["metadata"].get("labels", {})),
                              ("spec.selector", deployment["spec"]["selector"]["matchLabels"]),
                              ("the pod template", deployment["spec"]["template"]["metadata"].get("labels", {}))):
            if labels.pop(SLOT_LABEL, None) != colour:
                problems.append(f"{colour}: {where} lacks {SLOT_LABEL}={colour}")
        deployment["metadata"].pop("name")
        deployment["spec"].pop("replicas", None)
    if blue != green:
        problems.append("green differs from blue beyond its name, slot label and replicas")
    return problems


def main(argv):
    checks = {"selectors": selector_problems, "autoscaling": autoscaling_problems, "blue-green": blue_green_problems}
    if len(argv) != 4 or argv[1] not in checks:
        sys.exit(f"usage: manifests.py {'|'.join(checks)} NAME RENDERED.yaml")
    with open(argv[3]) as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    problems = checks[argv[1]](documents)
    if problems:
        sys.exit("\n".join(f"{argv[2]}: {p}" for p in problems))
    if argv[1] == "selectors":
        print(f"{argv[2]}: every selector matches its own pods, each Service, PDB and HPA exactly one Deployment")
    elif argv[1] == "blue-green":
        print(f"{argv[2]}: blue and green alike but for name, slot and replicas (green 0); the Service on blue")
    else:
        print(f"{argv[2]}: every HPA scales on CPU and memory, targets between the measured footprint and the limits")


if __name__ == "__main__":
    main(sys.argv)
