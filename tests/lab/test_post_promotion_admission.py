"""A Rollout's ``postPromotion`` (and a ModelRelease's ``canary.postPromotion``) as the real API
server admits it: the example's watch is stored with its defaults, and bad input is refused by
the CRD's schema and CEL rules before the operator ever sees it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import Kubectl

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rollout-post-promotion"


def rollout() -> dict[str, Any]:
    docs = yaml.safe_load_all((EXAMPLE / "rollout.yaml").read_text())
    return copy.deepcopy(next(d for d in docs if d and d["kind"] == "Rollout"))


def with_watch(**fields: Any) -> dict[str, Any]:
    doc = rollout()
    watch = doc["spec"]["strategy"]["canary"]["postPromotion"]
    for name, value in fields.items():
        if value is None:
            watch.pop(name, None)
        else:
            watch[name] = value
    return doc


def test_defaults_are_stored(kubectl: Kubectl, namespace: str) -> None:
    doc = rollout()
    doc["spec"]["strategy"]["canary"]["postPromotion"] = {
        "metrics": doc["spec"]["strategy"]["canary"]["postPromotion"]["metrics"]
    }
    applied = kubectl(
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input=yaml.safe_dump(doc),
        namespace=namespace,
        check=True,
    )
    watch = json.loads(applied.stdout)["spec"]["strategy"]["canary"]["postPromotion"]
    assert watch["duration"] == "24h"
    assert watch["interval"] == "5m"
    assert watch["windows"] == {"short": "1h", "long": "24h"}
    assert (watch["confirmAfter"], watch["clearAfter"]) == (3, 3)
    assert watch["previousRevisionReplicas"] == 100
    assert watch["onRegression"] == {"critical": "rollback", "warning": "hold", "info": "alert"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"metrics": None}, "postPromotion needs metrics or templates", id="empty"),
        pytest.param({"confirmAfter": 0}, "confirmAfter", id="confirm-0"),
        pytest.param({"onRegression": {"critical": "revert"}}, "revert", id="action"),
        pytest.param({"duration": "tomorrow"}, "duration", id="duration"),
        pytest.param({"interval": "0s"}, "duration must be greater than 0", id="zero"),
        pytest.param({"previousRevisionReplicas": 150}, "previousRevisionReplicas", id="share"),
        pytest.param(
            {"kpis": [{"metric": "error-ratio", "severity": "major"}]}, "major", id="severity"
        ),
    ],
)
def test_bad_watch_is_refused(
    fields: dict[str, Any], message: str, kubectl: Kubectl, namespace: str
) -> None:
    refused = kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        input=yaml.safe_dump(with_watch(**fields)),
        namespace=namespace,
        check=False,
    )
    assert refused.returncode != 0, refused.stdout
    assert message in refused.stderr, refused.stderr


MLFLOW_EXAMPLE = EXAMPLE.parent / "modelrelease-mlflow"


def release_with_watch(**fields: Any) -> dict[str, Any]:
    """``examples/modelrelease-mlflow``'s ModelRelease, its watch changed by ``fields``."""
    docs = yaml.safe_load_all((MLFLOW_EXAMPLE / "modelrelease.yaml").read_text())
    doc = copy.deepcopy(next(d for d in docs if d and d["kind"] == "ModelRelease"))
    watch = doc["spec"]["canary"]["postPromotion"]
    for name, value in fields.items():
        if value is None:
            watch.pop(name, None)
        else:
            watch[name] = value
    return doc


def test_modelrelease_watch_defaults_are_stored(kubectl: Kubectl, namespace: str) -> None:
    doc = release_with_watch()
    watch = doc["spec"]["canary"]["postPromotion"]
    doc["spec"]["canary"]["postPromotion"] = {"metrics": watch["metrics"]}
    applied = kubectl(
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input=yaml.safe_dump(doc),
        namespace=namespace,
        check=True,
    )
    stored = json.loads(applied.stdout)["spec"]["canary"]["postPromotion"]
    assert (stored["duration"], stored["interval"]) == ("24h", "5m")
    assert stored["windows"] == {"short": "1h", "long": "24h"}
    assert stored["onRegression"] == {"critical": "rollback", "warning": "hold", "info": "alert"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"metrics": None}, "postPromotion needs metrics or templates", id="empty"),
        pytest.param({"clearAfter": 0}, "clearAfter", id="clear-0"),
        pytest.param({"onRegression": {"warning": "page"}}, "page", id="action"),
    ],
)
def test_bad_modelrelease_watch_is_refused(
    fields: dict[str, Any], message: str, kubectl: Kubectl, namespace: str
) -> None:
    refused = kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        input=yaml.safe_dump(release_with_watch(**fields)),
        namespace=namespace,
        check=False,
    )
    assert refused.returncode != 0, refused.stdout
    assert message in refused.stderr, refused.stderr
