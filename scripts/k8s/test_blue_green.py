"""The blue-green switch logic against an in-memory cluster: every path, every rollback.

    python3 -m unittest discover -s scripts/k8s -p 'test_*.py'

The load test (scripts/containers/blue_green_test.py) runs the same logic on processes behind
HAProxy; these cover the failure paths that one does not, in milliseconds of fake time.
"""

import unittest

import blue_green
from blue_green import ColourState, DriverError, Limits, Progress, SwitchFailed


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeCluster:
    """Two colours and a Service. A pod becomes ready `ready_after_s` after it is scaled up,
    unless its image is in `broken_images`; scaled-down pods are gone `gone_after_s` later."""

    def __init__(self, clock, live="blue", images=None, replicas=None):
        self.clock = clock
        self.service = live
        self.images = images or {"blue": "v1", "green": "v1"}
        self.replicas = replicas or {"blue": 3, "green": 0}
        self.changed_at = {"blue": -100.0, "green": -100.0}
        self.previous = dict(self.replicas)
        self.broken_images = set()
        self.ready_after_s, self.gone_after_s = 2.0, 10.0
        self.endpoints_lag = {}  # colour -> endpoints never become exactly this colour's pods
        self.traffic_fails = False
        self.calls = []

    def live(self):
        return self.service

    def state(self, colour):
        return ColourState(self.images[colour], self.replicas[colour])

    def set_image(self, colour, image):
        self.calls.append(("set_image", colour, image))
        self.images[colour] = image
        self.changed_at[colour] = self.clock.now

    def scale(self, colour, replicas):
        self.calls.append(("scale", colour, replicas))
        if replicas == self.replicas[colour]:
            return  # as a Deployment: nothing changes, nothing restarts
        self.previous[colour] = self.replicas[colour]
        self.replicas[colour] = replicas
        self.changed_at[colour] = self.clock.now

    def progress(self, colour):
        wanted = self.replicas[colour]
        settled = self.clock.now - self.changed_at[colour]
        ready = 0 if self.images[colour] in self.broken_images or settled < self.ready_after_s else wanted
        existing = wanted if settled >= self.gone_after_s else max(wanted, self.previous[colour])
        return Progress(wanted, ready, existing)

    def point_service(self, colour):
        self.calls.append(("point_service", colour))
        self.service = colour

    def serving_problem(self, colour, wanted):
        if self.service != colour or colour in self.endpoints_lag:
            return f"the Service still sends to {blue_green.other(colour)}"
        return None

    def check_traffic(self, count):
        if self.traffic_fails:
            raise DriverError("health request 1 through the Service failed")


class SwitchTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeClock()
        self.cluster = FakeCluster(self.clock)
        self.log = []

    def switch(self, *args, **kwargs):
        kwargs.setdefault("limits", Limits(ready_timeout_s=30, verify_timeout_s=5, scale_down_timeout_s=60))
        return blue_green.switch(self.cluster, *args, clock=self.clock, log=self.log.append, **kwargs)

    def test_a_switch_brings_the_colour_up_then_flips_then_scales_the_old_one_down(self):
        timings = self.switch("green", image="v2")
        self.assertEqual(self.cluster.service, "green")
        self.assertEqual(self.cluster.state("green"), ColourState("v2", 3))
        self.assertEqual(self.cluster.state("blue"), ColourState("v1", 0))
        self.assertEqual(self.cluster.calls, [("set_image", "green", "v2"), ("scale", "green", 3),
                                              ("point_service", "green"), ("scale", "blue", 0)])
        self.assertGreaterEqual(timings["ready_s"], 2.0)
        self.assertIn("old_gone_s", timings)

    def test_the_flip_waits_until_every_pod_of_the_colour_is_ready(self):
        self.cluster.ready_after_s = 12.0
        timings = self.switch("green")
        self.assertGreaterEqual(timings["ready_s"], 12.0)

    def test_keep_old_leaves_the_old_colour_running_and_rollback_is_then_immediate(self):
        self.switch("green", image="v2", keep_old=True)
        self.assertEqual(self.cluster.state("blue"), ColourState("v1", 3))
        self.cluster.calls.clear()
        timings = blue_green.rollback(self.cluster, clock=self.clock, log=self.log.append)
        self.assertEqual(self.cluster.service, "blue")
        self.assertEqual(self.cluster.state("green"), ColourState("v2", 0))
        self.assertLess(timings["ready_s"], 1.0)  # blue was ready all along

    def test_rollback_returns_to_the_previous_release_on_its_image(self):
        self.switch("green", image="v2")
        blue_green.rollback(self.cluster, clock=self.clock, log=self.log.append)
        self.assertEqual(self.cluster.service, "blue")
        self.assertEqual(self.cluster.state("blue"), ColourState("v1", 3))
        self.assertEqual(self.cluster.state("green"), ColourState("v2", 0))

    def test_a_colour_that_never_becomes_ready_is_rolled_back_without_touching_the_service(self):
        self.cluster.broken_images.add("bad")
        with self.assertRaises(SwitchFailed) as failure:
            self.switch("green", image="bad")
        self.assertIn("traffic stayed on blue", str(failure.exception))
        self.assertEqual(self.cluster.service, "blue")
        self.assertNotIn(("point_service", "green"), self.cluster.calls)
        self.assertEqual(self.cluster.state("green"), ColourState("v1", 0))
        self.assertEqual(self.cluster.state("blue"), ColourState("v1", 3))
        self.assertGreaterEqual(self.clock.now, 30)  # it waited for the whole ready timeout

    def test_a_failed_traffic_check_after_the_flip_points_the_service_back(self):
        self.cluster.traffic_fails = True
        with self.assertRaises(SwitchFailed) as failure:
            self.switch("green", image="v2")
        self.assertIn("the Service is back on blue", str(failure.exception))
        self.assertEqual(self.cluster.service, "blue")
        self.assertEqual(self.cluster.calls[-3:], [("point_service", "blue"), ("scale", "green", 0),
                                                   ("set_image", "green", "v1")])
        self.assertEqual(self.cluster.state("blue"), ColourState("v1", 3))

    def test_endpoints_that_never_become_the_new_colour_roll_back(self):
        self.cluster.endpoints_lag["green"] = True
        with self.assertRaises(SwitchFailed):
            self.switch("green")
        self.assertEqual(self.cluster.service, "blue")
        self.assertEqual(self.cluster.state("green").replicas, 0)

    def test_switching_to_the_live_colour_is_refused(self):
        with self.assertRaises(SwitchFailed) as failure:
            self.switch("blue", image="v2")
        self.assertIn("already live", str(failure.exception))
        self.assertEqual(self.cluster.calls, [])

    def test_replicas_default_to_the_live_colour_and_can_be_set(self):
        self.switch("green", replicas=5)
        self.assertEqual(self.cluster.state("green").replicas, 5)

    def test_status_names_the_live_colour(self):
        self.assertIn("blue (live): v1, 3/3 ready", blue_green.status(self.cluster))


class PinToLiveTest(unittest.TestCase):
    def rendered(self):
        def deployment(colour, replicas):
            return {"kind": "Deployment", "metadata": {"name": f"svc-{colour}"},
                    "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": "v1"}]}}}}
        return [{"kind": "Service", "metadata": {"name": "svc"},
                 "spec": {"selector": {"app": "x", blue_green.SLOT_LABEL: "blue"}}},
                deployment("blue", 3), deployment("green", 0), None]

    def test_reapplying_keeps_the_live_colour_replicas_and_images(self):
        states = {"blue": ColourState("v1", 0), "green": ColourState("v2", 4)}
        service, blue, green = blue_green.pin_to_live(self.rendered(), "svc", "green", states)
        self.assertEqual(service["spec"]["selector"], {"app": "x", blue_green.SLOT_LABEL: "green"})
        self.assertEqual((blue["spec"]["replicas"], green["spec"]["replicas"]), (0, 4))
        self.assertEqual(green["spec"]["template"]["spec"]["containers"][0]["image"], "v2")

    def test_a_first_install_keeps_the_rendered_values(self):
        service, blue, green = blue_green.pin_to_live(self.rendered(), "svc", None, {"blue": None, "green": None})
        self.assertEqual(service["spec"]["selector"][blue_green.SLOT_LABEL], "blue")
        self.assertEqual((blue["spec"]["replicas"], green["spec"]["replicas"]), (3, 0))


if __name__ == "__main__":
    unittest.main()
