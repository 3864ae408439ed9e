"""The blue-green switch's driver for a real cluster, through kubectl (blue_green.py).

A colour is the Deployment NAME-COLOUR; the Service NAME selects it by the label
app.kubernetes.io/slot. Readiness is the Deployment's status (every pod on the current template
and ready); the Service's endpoints are its EndpointSlices; traffic checks go through the API
server's service proxy, which forwards to the Service's ready endpoints.
"""

import json
import subprocess

from blue_green import COLOURS, SLOT_LABEL, ColourState, DriverError, Progress, pin_to_live


class KubectlDriver:
    def __init__(self, namespace, name, context=None, kubectl="kubectl", timeout_s=60):
        self.namespace, self.name = namespace, name
        self.base = [kubectl, "--namespace", namespace] + (["--context", context] if context else [])
        self.timeout_s = timeout_s

    def kubectl(self, *args, stdin=None):
        try:
            result = subprocess.run(self.base + list(args), capture_output=True, text=True, input=stdin,
                                    timeout=self.timeout_s)
        except subprocess.TimeoutExpired as error:
            raise DriverError(f"kubectl {' '.join(args[:3])}: no answer within {self.timeout_s} s") from error
        if result.returncode != 0:
            # kubectl repeats client-side errors; its last line says what failed.
            last = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
            raise DriverError(f"kubectl {' '.join(args[:3])}: {last}")
        return result.stdout

    def get(self, *args):
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def deployment_name(self, colour):
        return f"{self.name}-{colour}"

    def deployment(self, colour):
        return self.get("deployment", self.deployment_name(colour))

    def live(self):
        selector = self.get("service", self.name)["spec"].get("selector", {})
        colour = selector.get(SLOT_LABEL)
        if colour not in COLOURS:
            raise DriverError(f"Service {self.name} selects {SLOT_LABEL}={colour!r}, not a colour: is "
                              "deploy/k8s/components/blue-green applied?")
        return colour

    def state(self, colour):
        deployment = self.deployment(colour)
        return ColourState(deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                           deployment["spec"].get("replicas", 1))

    def set_image(self, colour, image):
        deployment = self.deployment(colour)
        container = deployment["spec"]["template"]["spec"]["containers"][0]["name"]
        self.kubectl("set", "image", f"deployment/{self.deployment_name(colour)}", f"{container}={image}")

    def scale(self, colour, replicas):
        self.kubectl("scale", f"deployment/{self.deployment_name(colour)}", f"--replicas={replicas}")

    def progress(self, colour):
        deployment = self.deployment(colour)
        spec, status = deployment["spec"], deployment.get("status", {})
        current = status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        ready = min(status.get("updatedReplicas", 0), status.get("readyReplicas", 0),
                    status.get("availableReplicas", 0)) if current else 0
        selector = ",".join(f"{k}={v}" for k, v in spec["selector"]["matchLabels"].items())
        existing = len(self.get("pods", "-l", selector)["items"])
        return Progress(wanted=spec.get("replicas", 1), ready=ready, existing=existing)

    def point_service(self, colour):
        patch = json.dumps({"spec": {"selector": {SLOT_LABEL: colour}}})
        self.kubectl("patch", "service", self.name, "--type=merge", "-p", patch, "--field-manager=blue-green")

    def serving_problem(self, colour, wanted):
        slices = self.get("endpointslices", "-l", f"kubernetes.io/service-name={self.name}")["items"]
        ready = [endpoint.get("targetRef", {}).get("name", "?") for s in slices for endpoint in s.get("endpoints") or []
                 if endpoint.get("conditions", {}).get("ready")]
        prefix = f"{self.deployment_name(colour)}-"
        strangers = [pod for pod in ready if not pod.startswith(prefix)]
        if strangers:
            return f"the Service still sends to {', '.join(sorted(strangers))}"
        if len(ready) < wanted:
            return f"{len(ready)} of {wanted} {colour} pods are ready endpoints of the Service"
        return None

    def check_traffic(self, count):
        path = f"/api/v1/namespaces/{self.namespace}/services/{self.name}:http/proxy/health/ready"
        for attempt in range(count):
            try:
                self.kubectl("get", "--raw", path)
            except DriverError as error:
                raise DriverError(f"health request {attempt + 1} of {count} through the Service failed: {error}") from error

    def apply(self, rendered):
        import yaml  # noqa: PLC0415 (only `apply` reads manifests; switch and status need no PyYAML)

        with open(rendered) as f:
            documents = list(yaml.safe_load_all(f))
        try:
            live = self.live()
        except DriverError:
            live = None  # first install: the rendered colour (blue) stands
        states = {}
        for colour in COLOURS:
            try:
                states[colour] = self.state(colour)
            except DriverError:
                states[colour] = None
        pinned = pin_to_live(documents, self.name, live, states)
        print(self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(pinned, sort_keys=False)), end="")
