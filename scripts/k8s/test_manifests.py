"""The manifest checks reject what they must: each rule fails on the manifests it guards against.

    python3 -m unittest discover -s scripts/k8s -p 'test_*.py'
"""

import copy
import os
import unittest

import yaml

import manifests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def base():
    """The base's Deployment, Service, PDB and HPA with the name label its kustomization adds to
    templates and selectors."""
    documents = []
    for name in ("deployment", "service", "pdb", "hpa"):
        with open(os.path.join(REPO, "deploy/k8s/base", f"{name}.yaml")) as f:
            documents.append(yaml.safe_load(f))
    name = {"app.kubernetes.io/name": "portfolio-service"}
    found = kinds(documents)
    found["Deployment"]["spec"]["selector"]["matchLabels"].update(name)
    found["Deployment"]["spec"]["template"]["metadata"]["labels"].update(name)
    found["Service"]["spec"]["selector"].update(name)
    found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].update(name)
    return documents


def coloured(documents, colour):
    """A colour's copy of the Deployment, PDB and HPA, as components/blue-green makes it."""
    copies = []
    for doc in copy.deepcopy(documents):
        if doc["kind"] == "Service":
            continue
        doc["metadata"]["name"] += f"-{colour}"
        if doc["kind"] == "Deployment":
            doc["spec"]["selector"]["matchLabels"]["slot"] = colour
            doc["spec"]["template"]["metadata"]["labels"]["slot"] = colour
        elif doc["kind"] == "PodDisruptionBudget":
            doc["spec"]["selector"]["matchLabels"]["slot"] = colour
        else:
            doc["spec"]["scaleTargetRef"]["name"] += f"-{colour}"
        copies.append(doc)
    return copies


def kinds(documents):
    return {d["kind"]: d for d in documents}


class SelectorsTest(unittest.TestCase):
    def test_the_base_passes(self):
        self.assertEqual(manifests.selector_problems(base()), [])

    def test_a_service_selecting_a_label_the_pods_lack_is_rejected(self):
        documents = base()
        kinds(documents)["Service"]["spec"]["selector"]["app.kubernetes.io/instance"] = "portfolio"
        self.assertIn("selects the pods of 0 Deployments", " ".join(manifests.selector_problems(documents)))

    def test_a_spread_constraint_over_a_missing_label_is_rejected(self):
        documents = base()
        spread = kinds(documents)["Deployment"]["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
        spread["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] = "portfolio"
        self.assertIn("spread over kubernetes.io/hostname", " ".join(manifests.selector_problems(documents)))

    def test_blue_green_with_the_service_on_one_colour_passes(self):
        service = kinds(base())["Service"]
        service["spec"]["selector"]["slot"] = "blue"
        documents = [service] + coloured(base(), "blue") + coloured(base(), "green")
        self.assertEqual(manifests.selector_problems(documents), [])

    def test_a_service_spanning_both_colours_is_rejected(self):
        documents = [kinds(base())["Service"]] + coloured(base(), "blue") + coloured(base(), "green")
        problems = " ".join(manifests.selector_problems(documents))
        self.assertIn("Service portfolio-service: selector", problems)
        self.assertIn("2 Deployments (portfolio-service-blue, portfolio-service-green)", problems)

    def test_a_pdb_spanning_both_colours_is_rejected(self):
        blue, green = coloured(base(), "blue"), coloured(base(), "green")
        kinds(blue)["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].pop("slot")
        self.assertIn("PodDisruptionBudget portfolio-service-blue: selector",
                      " ".join(manifests.selector_problems(blue + green)))

    def test_a_colour_without_a_pdb_is_rejected(self):
        green = [d for d in coloured(base(), "green") if d["kind"] != "PodDisruptionBudget"]
        self.assertIn("Deployment portfolio-service-green: 0 PodDisruptionBudgets",
                      " ".join(manifests.selector_problems(coloured(base(), "blue") + green)))

    def test_an_hpa_on_the_wrong_colour_is_rejected(self):
        blue, green = coloured(base(), "blue"), coloured(base(), "green")
        kinds(green)["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] = "portfolio-service-blue"
        problems = " ".join(manifests.selector_problems(blue + green))
        self.assertIn("Deployment portfolio-service-blue: 2 HorizontalPodAutoscalers", problems)
        self.assertIn("Deployment portfolio-service-green: 0 HorizontalPodAutoscalers", problems)

    def test_overlapping_deployment_selectors_are_rejected(self):
        blue, green = coloured(base(), "blue"), coloured(base(), "green")
        kinds(green)["Deployment"]["spec"]["selector"]["matchLabels"].pop("slot")
        self.assertIn("also selects Deployment portfolio-service-blue's pods",
                      " ".join(manifests.selector_problems(blue + green)))


class BlueGreenTest(unittest.TestCase):
    def rendered(self):
        service = kinds(base())["Service"]
        service["spec"]["selector"][manifests.SLOT_LABEL] = "blue"
        documents = [service]
        for colour in ("blue", "green"):
            for doc in coloured(base(), colour):
                if doc["kind"] == "Deployment":
                    doc["spec"]["replicas"] = 3 if colour == "blue" else 0
                    for labels in (doc["metadata"]["labels"], doc["spec"]["selector"]["matchLabels"],
                                   doc["spec"]["template"]["metadata"]["labels"]):
                        labels.pop("slot", None)
                        labels[manifests.SLOT_LABEL] = colour
                documents.append(doc)
        return documents

    def green(self, documents):
        return next(d for d in documents if d["metadata"]["name"] == "portfolio-service-green")

    def test_a_faithful_copy_passes(self):
        self.assertEqual(manifests.blue_green_problems(self.rendered()), [])

    def test_a_green_that_differs_from_blue_is_rejected(self):
        documents = self.rendered()
        self.green(documents)["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
        self.assertIn("green differs from blue", " ".join(manifests.blue_green_problems(documents)))

    def test_a_green_that_starts_with_pods_is_rejected(self):
        documents = self.rendered()
        self.green(documents)["spec"]["replicas"] = 3
        self.assertIn("green starts with 3 replicas", " ".join(manifests.blue_green_problems(documents)))

    def test_a_pod_template_without_its_colour_is_rejected(self):
        documents = self.rendered()
        self.green(documents)["spec"]["template"]["metadata"]["labels"][manifests.SLOT_LABEL] = "blue"
        self.assertIn("green: the pod template lacks", " ".join(manifests.blue_green_problems(documents)))


class AutoscalingTest(unittest.TestCase):
    def setUp(self):
        self.documents = base()
        self.deployment = kinds(self.documents)["Deployment"]
        self.hpa = kinds(self.documents)["HorizontalPodAutoscaler"]
        self.resources = self.deployment["spec"]["template"]["spec"]["containers"][0]["resources"]

    def problems(self):
        return " ".join(manifests.autoscaling_problems(self.documents))

    def test_the_base_passes(self):
        self.assertEqual(self.problems(), "")

    def test_an_hpa_on_cpu_only_is_rejected(self):
        self.hpa["spec"]["metrics"] = [m for m in self.hpa["spec"]["metrics"] if m["resource"]["name"] == "cpu"]
        self.assertIn("no memory averageUtilization target", self.problems())

    def test_a_memory_target_at_the_limit_is_rejected(self):
        self.resources["limits"]["memory"] = self.resources["requests"]["memory"]
        for metric in self.hpa["spec"]["metrics"]:
            if metric["resource"]["name"] == "memory":
                metric["resource"]["target"]["averageUtilization"] = 100
        self.assertIn("is not below the limit", self.problems())

    def test_a_request_under_the_measured_peak_is_rejected(self):
        annotations = self.deployment["metadata"]["annotations"]
        peak = manifests.mebibytes(annotations[manifests.FOOTPRINT + "peak-rss"])
        self.resources["requests"]["memory"] = f"{int(peak) - 1}Mi"
        problems = self.problems()
        self.assertIn("exceeds the memory request", problems)
        self.assertIn("reaches the memory target", problems)

    def test_an_unmeasured_deployment_is_rejected(self):
        del self.deployment["metadata"]["annotations"]
        self.assertIn("no measured footprint", self.problems())

    def test_quantities_parse(self):
        self.assertEqual([manifests.mebibytes(q) for q in ("64Mi", "1Gi", "512Ki")], [64, 1024, 0.5])
        self.assertEqual([manifests.millicores(q) for q in ("250m", "1", "0.5")], [250, 1000, 500])
        with self.assertRaises(ValueError):
            manifests.mebibytes("64M")


if __name__ == "__main__":
    unittest.main()
