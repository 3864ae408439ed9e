"""The timing checks reject what they must: each rule fails on the values it guards against."""

import dataclasses
import os
import unittest

import yaml

import timings

REPO = timings.REPO


def base_manifests():
    """The base Deployment and ConfigMap data, as kustomize would render them (without overlays)."""
    with open(os.path.join(REPO, "deploy/k8s/base/deployment.yaml")) as f:
        deployment = yaml.safe_load(f)
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "config"}}]
    data = {}
    with open(os.path.join(REPO, "deploy/k8s/base/config.env")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                key, value = line.strip().split("=", 1)
                data[key] = value
    config_map = {"kind": "ConfigMap", "metadata": {"name": "config"}, "data": data}
    return [deployment, config_map]


class TimingsTest(unittest.TestCase):
    def setUp(self):
        self.good = timings.from_manifests(base_manifests())

    def test_the_base_manifests_agree(self):
        self.assertEqual(self.good.problems(), [])
        self.assertEqual((self.good.pre_stop_s, self.good.drain_delay_s), (5, 5.0))

    def test_a_grace_period_shorter_than_the_drain_is_rejected(self):
        short = dataclasses.replace(self.good, grace_s=29)
        self.assertIn("terminationGracePeriodSeconds 29", " ".join(short.problems()))

    def test_readiness_that_fails_after_the_drain_is_rejected(self):
        # The values before the rollout test: 2 failures x 5 s = 10 s > the 5 s drain.
        slow = dataclasses.replace(self.good, readiness=timings.Probe(5, 2, 2, 1))
        problems = " ".join(slow.problems())
        self.assertIn("10 s to fail", problems)
        self.assertIn("more than 2 s", problems)

    def test_no_drain_is_rejected(self):
        self.assertTrue(dataclasses.replace(self.good, drain_delay_s=0.0).problems())

    def test_durations_parse(self):
        self.assertEqual([timings.seconds(t) for t in ("5s", "250ms", "0s")], [5.0, 0.25, 0.0])
        with self.assertRaises(ValueError):
            timings.seconds("5m")


if __name__ == "__main__":
    unittest.main()
