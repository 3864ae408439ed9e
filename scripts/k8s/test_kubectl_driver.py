"""The kubectl driver, end to end against a stand-in `kubectl` that keeps a tiny cluster in a file.

    python3 -m unittest discover -s scripts/k8s -p 'test_*.py'

The stand-in answers the commands the driver runs with the JSON shapes of the Kubernetes API
(Deployment status, Service selector, EndpointSlices of ready pods, the service proxy) and
fails on any other command, so a switch and a rollback through KubectlDriver prove the command
lines and the parsing; the switch logic itself is tested in test_blue_green.py.
"""

import json
import os
import stat
import sys
import tempfile
import textwrap
import unittest

import blue_green
from kubectl_driver import KubectlDriver

FAKE_KUBECTL = textwrap.dedent('''\
    #!PYTHON -S
    import json, sys
    STATE = "STATE_PATH"
    with open(STATE) as f:
        cluster = json.load(f)
    args = sys.argv[1:]
    assert args[:2] == ["--namespace", "portfolio"], args
    args = args[2:]
    cluster["log"].append(args)
    def deployment(name):
        d = cluster["deployments"][name]
        replicas = d["replicas"]
        ready = 0 if d["image"] in cluster["broken"] else replicas
        return {"metadata": {"name": name, "generation": 2},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/slot": d["slot"]}},
                         "template": {"spec": {"containers": [{"name": "portfolio-service", "image": d["image"]}]}}},
                "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": replicas,
                           "readyReplicas": ready, "availableReplicas": ready}}
    def pods(slot):
        return [f"{name}-abc12-{i}" for name, d in cluster["deployments"].items() if d["slot"] == slot
                for i in range(d["replicas"])]
    out = None
    if args[:2] == ["get", "service"]:
        out = {"spec": {"selector": {"app.kubernetes.io/name": "portfolio-service",
                                     "app.kubernetes.io/slot": cluster["service"]}}}
    elif args[:2] == ["get", "deployment"]:
        if args[2] not in cluster["deployments"]:
            sys.exit(f'Error from server (NotFound): deployments.apps "{args[2]}" not found')
        out = deployment(args[2])
    elif args[:3] == ["get", "pods", "-l"]:
        slot = args[3].split("app.kubernetes.io/slot=")[1]
        out = {"items": [{"metadata": {"name": p}} for p in pods(slot)]}
    elif args[:3] == ["get", "endpointslices", "-l"]:
        assert args[3] == "kubernetes.io/service-name=portfolio-service", args
        ready = [p for p in pods(cluster["service"])
                 if cluster["deployments"][p.rsplit("-", 2)[0]]["image"] not in cluster["broken"]]
        out = {"items": [{"endpoints": [{"targetRef": {"kind": "Pod", "name": p}, "conditions": {"ready": True}}
                                        for p in ready]}]}
    elif args[:2] == ["get", "--raw"]:
        assert args[2] == "/api/v1/namespaces/portfolio/services/portfolio-service:http/proxy/health/ready", args
        print('{"status": "ready"}')
    elif args[:2] == ["set", "image"]:
        name = args[2].removeprefix("deployment/")
        container, image = args[3].split("=")
        assert container == "portfolio-service", args
        cluster["deployments"][name]["image"] = image
    elif args[0] == "scale":
        cluster["deployments"][args[1].removeprefix("deployment/")]["replicas"] = int(args[2].removeprefix("--replicas="))
    elif args[:3] == ["patch", "service", "portfolio-service"]:
        assert args[3] == "--type=merge", args
        cluster["service"] = json.loads(args[5])["spec"]["selector"]["app.kubernetes.io/slot"]
    else:
        sys.exit(f"fake kubectl: unexpected command {args}")
    if out is not None:
        assert args[-2:] == ["-o", "json"], args
        print(json.dumps(out))
    with open(STATE, "w") as f:
        json.dump(cluster, f)
    ''')


class KubectlDriverTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.state = os.path.join(self.dir.name, "cluster.json")
        self.write({"service": "blue", "broken": ["bad"], "log": [], "deployments": {
            "portfolio-service-blue": {"slot": "blue", "image": "v1", "replicas": 3},
            "portfolio-service-green": {"slot": "green", "image": "v1", "replicas": 0}}})
        kubectl = os.path.join(self.dir.name, "kubectl")
        with open(kubectl, "w") as f:
            f.write(FAKE_KUBECTL.replace("PYTHON", sys.executable).replace("STATE_PATH", self.state))
        os.chmod(kubectl, os.stat(kubectl).st_mode | stat.S_IXUSR)
        self.driver = KubectlDriver("portfolio", "portfolio-service", kubectl=kubectl)
        self.limits = blue_green.Limits(ready_timeout_s=1, verify_timeout_s=1, scale_down_timeout_s=1, poll_s=0.05)

    def tearDown(self):
        self.dir.cleanup()

    def write(self, cluster):
        with open(self.state, "w") as f:
            json.dump(cluster, f)

    def cluster(self):
        with open(self.state) as f:
            return json.load(f)

    def test_switch_and_rollback_through_kubectl(self):
        blue_green.switch(self.driver, "green", image="v2", limits=self.limits, log=lambda _: None)
        cluster = self.cluster()
        self.assertEqual(cluster["service"], "green")
        self.assertEqual(cluster["deployments"]["portfolio-service-green"], {"slot": "green", "image": "v2", "replicas": 3})
        self.assertEqual(cluster["deployments"]["portfolio-service-blue"]["replicas"], 0)
        self.assertIn(["patch", "service", "portfolio-service", "--type=merge", "-p",
                       '{"spec": {"selector": {"app.kubernetes.io/slot": "green"}}}', "--field-manager=blue-green"],
                      cluster["log"])
        blue_green.rollback(self.driver, limits=self.limits, log=lambda _: None)
        cluster = self.cluster()
        self.assertEqual(cluster["service"], "blue")
        self.assertEqual(cluster["deployments"]["portfolio-service-blue"], {"slot": "blue", "image": "v1", "replicas": 3})
        self.assertIn("blue (live): v1, 3/3 ready, 3 pods", blue_green.status(self.driver))

    def test_a_broken_image_is_rolled_back_through_kubectl(self):
        with self.assertRaises(blue_green.SwitchFailed):
            blue_green.switch(self.driver, "green", image="bad", limits=self.limits, log=lambda _: None)
        cluster = self.cluster()
        self.assertEqual(cluster["service"], "blue")
        self.assertEqual(cluster["deployments"]["portfolio-service-green"], {"slot": "green", "image": "v1", "replicas": 0})

    def test_a_service_without_a_colour_is_reported(self):
        cluster = self.cluster()
        cluster["service"] = None
        self.write(cluster)
        with self.assertRaises(blue_green.DriverError) as failure:
            self.driver.live()
        self.assertIn("is deploy/k8s/components/blue-green applied?", str(failure.exception))


if __name__ == "__main__":
    unittest.main()
