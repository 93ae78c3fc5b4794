"""The KServe adapter (``InferenceServices``) against the lab: the lab cluster's kube-apiserver
with KServe's CRD, and the lab controller playing KServe's controller, which cannot run here
(revisions, traffic split by ``canaryTrafficPercent``, roll-out when it is removed, pin at 0).
InferenceServices of uniquely named models in the shared ``default`` namespace."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hack.lab.lab import Lab
from rollwise.adapters.errors import Invalid, NotFound
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.serving.kserve import INFERENCESERVICES, InferenceServices
from rollwise.core.modelrelease.observations import InferenceServiceState

pytestmark = pytest.mark.lab

NS = "default"


def _isvc(name: str, predictor: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"predictor": predictor},
    }


def _model(uri: str) -> dict[str, Any]:
    return {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}


@pytest.fixture
def kube(lab: Lab) -> Iterator[KubeAPI]:
    api_client = lab.api_client()
    yield KubeAPI(api_client)
    api_client.close()


def _wait(
    read: Callable[[], InferenceServiceState | None],
    check: Callable[[InferenceServiceState], bool],
    what: str,
    timeout: float = 10.0,
) -> InferenceServiceState:
    deadline = time.monotonic() + timeout
    state = read()
    while state is None or not check(state):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout} s; last state: {state}")
        time.sleep(0.05)
        state = read()
    return state


def _version(kube: KubeAPI, name: str) -> str:
    return str(kube.get(INFERENCESERVICES, NS, name)["metadata"]["resourceVersion"])


def _settled(state: InferenceServiceState) -> bool:
    return state.observed_current and state.latest_ready_revision == state.latest_created_revision


def test_canary_5_25_rollout_and_writes_are_idempotent(lab: Lab, kube: KubeAPI) -> None:
    name = f"iris-{uuid.uuid4().hex[:6]}"
    isvcs = InferenceServices(kube)
    kube.create(INFERENCESERVICES, NS, _isvc(name, _model("s3://models/iris/1")))
    first, second = f"{name}-predictor-00001", f"{name}-predictor-00002"

    def read() -> InferenceServiceState | None:
        return isvcs.read(NS, name)

    fresh = _wait(read, lambda s: s.latest_percent == 100, "the first revision at 100%")
    assert fresh == InferenceServiceState(
        exists=True,
        storage_uri="s3://models/iris/1",
        canary_traffic_percent=None,
        latest_created_revision=first,
        latest_ready_revision=first,
        latest_rolledout_revision=first,
        previous_rolledout_revision=None,
        latest_percent=100,
        observed_current=True,
    )

    # New model with a 5% canary in one patch: the new revision never takes 100%.
    assert isvcs.set_storage_uri(NS, name, "s3://models/iris/2", canary_percent=5) is True
    obj = kube.get(INFERENCESERVICES, NS, name)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 5
    assert obj["spec"]["predictor"]["model"] == {
        "modelFormat": {"name": "sklearn"},
        "storageUri": "s3://models/iris/2",
    }
    seen: list[int | None] = []

    def at_five() -> InferenceServiceState | None:
        state = read()
        if state is not None and state.latest_created_revision == second:
            seen.append(state.latest_percent)
        return state

    canary = _wait(at_five, lambda s: _settled(s) and s.latest_percent == 5, "the canary at 5%")
    assert 100 not in seen, seen
    assert canary.latest_created_revision == canary.latest_ready_revision == second
    assert canary.latest_rolledout_revision == first
    assert canary.canary_traffic_percent == 5
    split = kube.get(INFERENCESERVICES, NS, name)["status"]["components"]["predictor"]["traffic"]
    assert {t["revisionName"]: t["percent"] for t in split} == {second: 5, first: 95}

    # Idempotent: the same calls again write nothing (the resourceVersion stays).
    version = _version(kube, name)
    assert isvcs.set_storage_uri(NS, name, "s3://models/iris/2", canary_percent=5) is False
    assert isvcs.set_storage_uri(NS, name, "s3://models/iris/2") is False
    assert isvcs.set_canary_percent(NS, name, 5) is False
    assert _version(kube, name) == version

    assert isvcs.set_canary_percent(NS, name, 25) is True
    _wait(read, lambda s: _settled(s) and s.latest_percent == 25, "the canary at 25%")
    assert isvcs.set_canary_percent(NS, name, 25) is False

    # Removing canaryTrafficPercent rolls the latest revision out.
    assert isvcs.remove_canary_percent(NS, name) is True
    assert "canaryTrafficPercent" not in kube.get(INFERENCESERVICES, NS, name)["spec"]["predictor"]
    done = _wait(
        read, lambda s: s.latest_rolledout_revision == second, "the new revision rolled out"
    )
    assert done.latest_percent == 100
    assert done.previous_rolledout_revision == first
    assert done.canary_traffic_percent is None
    version = _version(kube, name)
    assert isvcs.remove_canary_percent(NS, name) is False
    assert _version(kube, name) == version


def test_canary_zero_pins_traffic_to_the_rolled_out_revision(lab: Lab, kube: KubeAPI) -> None:
    name = f"wine-{uuid.uuid4().hex[:6]}"
    isvcs = InferenceServices(kube)
    # The older per-framework form of the predictor.
    predictor = {"sklearn": {"storageUri": "s3://models/wine/1"}}
    kube.create(INFERENCESERVICES, NS, _isvc(name, predictor))
    first, second = f"{name}-predictor-00001", f"{name}-predictor-00002"

    def read() -> InferenceServiceState | None:
        return isvcs.read(NS, name)

    fresh = _wait(read, lambda s: s.latest_percent == 100, "the first revision at 100%")
    assert fresh.storage_uri == "s3://models/wine/1"

    assert isvcs.set_storage_uri(NS, name, "s3://models/wine/2", canary_percent=10) is True
    assert kube.get(INFERENCESERVICES, NS, name)["spec"]["predictor"] == {
        "sklearn": {"storageUri": "s3://models/wine/2"},
        "canaryTrafficPercent": 10,
    }
    _wait(read, lambda s: _settled(s) and s.latest_percent == 10, "the canary at 10%")

    # Rollback: 0% keeps the new revision created but sends everything to the rolled-out one.
    assert isvcs.set_canary_percent(NS, name, 0) is True
    pinned = _wait(read, lambda s: _settled(s) and s.latest_percent == 0, "the canary at 0%")
    assert pinned.latest_created_revision == second
    assert pinned.latest_rolledout_revision == first
    assert pinned.canary_traffic_percent == 0
    split = kube.get(INFERENCESERVICES, NS, name)["status"]["components"]["predictor"]["traffic"]
    assert {t["revisionName"]: t["percent"] for t in split if t["percent"]} == {first: 100}
    version = _version(kube, name)
    assert isvcs.set_canary_percent(NS, name, 0) is False
    assert _version(kube, name) == version


def test_missing_inference_service_and_predictor_without_a_model(lab: Lab, kube: KubeAPI) -> None:
    isvcs = InferenceServices(kube)
    missing = f"none-{uuid.uuid4().hex[:6]}"
    assert isvcs.read(NS, missing) is None
    with pytest.raises(NotFound, match=f"InferenceService {NS}/{missing} not found"):
        isvcs.set_storage_uri(NS, missing, "s3://x/1", canary_percent=5)
    with pytest.raises(NotFound):
        isvcs.set_canary_percent(NS, missing, 5)
    with pytest.raises(NotFound):
        isvcs.remove_canary_percent(NS, missing)

    custom = f"custom-{uuid.uuid4().hex[:6]}"
    containers = {"containers": [{"name": "kserve-container", "image": "example/model:1"}]}
    created = kube.create(INFERENCESERVICES, NS, _isvc(custom, containers))
    with pytest.raises(Invalid, match=r"spec\.predictor has no model"):
        isvcs.set_storage_uri(NS, custom, "s3://x/1")
    # The simulator keeps writing status; the spec (its generation) was not touched.
    after = kube.get(INFERENCESERVICES, NS, custom)
    assert after["metadata"]["generation"] == created["metadata"]["generation"]
    assert after["spec"] == created["spec"]
    with pytest.raises(ValueError, match="within 0-100"):
        isvcs.set_canary_percent(NS, custom, 101)
