"""The NotificationPolicy CRD: it agrees with ``rollwise.core.notification`` field by field and
is complete for ``kubectl explain`` and ``kubectl get``.

What kube-apiserver admits under this CRD (defaults, CEL rules, the example) is
``tests/lab/test_notification_admission.py``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rollwise.core.notification import NotificationPolicySpec
from tests.unit.test_crds import compare_model, walk

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "notificationpolicies.rollwise.dev.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
OPENAPI = VERSION["schema"]["openAPIV3Schema"]
EXAMPLE = ROOT / "examples" / "notifications" / "notificationpolicy.yaml"


def test_names_categories_and_status_subresource() -> None:
    names = CRD["spec"]["names"]
    assert (names["kind"], names["plural"]) == ("NotificationPolicy", "notificationpolicies")
    assert names["categories"] == ["rollwise"]
    assert CRD["spec"]["scope"] == "Namespaced"
    assert VERSION["subresources"] == {"status": {}}
    columns = [(c["name"], c["jsonPath"]) for c in VERSION["additionalPrinterColumns"]]
    assert columns[0] == ("Ready", '.status.conditions[?(@.type=="Ready")].status')
    assert columns[-1] == ("Age", ".metadata.creationTimestamp")


def test_every_property_has_a_description() -> None:
    undocumented = [
        f"{path}.{name}" if path else name
        for path, node in walk(OPENAPI)
        for name, sub in node.get("properties", {}).items()
        if not str(sub.get("description", "")).strip() and (path, name) != ("", "metadata")
    ]
    assert undocumented == []


def test_crd_spec_matches_the_model() -> None:
    problems: list[str] = []
    compare_model(NotificationPolicySpec, OPENAPI["properties"]["spec"], "spec", problems)
    assert problems == []
