"""``PassView``: one reconcile pass reads each object from the API server at most once.

Requests are counted by the lab's API server itself (``request_counts``), so these tests prove
what reaches the server, not what the view believes it saved.
"""

from __future__ import annotations

from typing import Any

import pytest

from hack.lab.kube.server import BackgroundAPIServer
from rollwise.adapters.errors import Conflict, NotFound
from rollwise.adapters.kube import DEPLOYMENTS, KubeAPI, PassView

pytestmark = pytest.mark.lab


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"rollwise.dev/rollout": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    }


def served(apiserver: BackgroundAPIServer, verb: str) -> int:
    counts = apiserver.server.request_counts
    return sum(
        n for (_, v, resource), n in counts.items() if v == verb and resource == "deployments"
    )


@pytest.fixture
def kube(kube_client: Any) -> KubeAPI:
    return KubeAPI(kube_client)


def test_a_pass_reads_an_object_once_and_hands_out_copies(
    apiserver: BackgroundAPIServer, kube: KubeAPI, namespace: str
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    view = kube.pass_view()
    before = served(apiserver, "get")
    first = view.get(DEPLOYMENTS, namespace, "a")
    first["spec"]["replicas"] = 99  # a caller editing what it got
    again = view.get(DEPLOYMENTS, namespace, "a")
    assert served(apiserver, "get") - before == 1
    assert again["spec"]["replicas"] == 1
    assert view.requests_saved == 1


def test_listed_objects_and_absent_ones_are_not_read_again(
    apiserver: BackgroundAPIServer, kube: KubeAPI, namespace: str
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    kube.create(DEPLOYMENTS, namespace, deployment("b"))
    view = kube.pass_view()
    before = served(apiserver, "get")
    assert {d["metadata"]["name"] for d in view.list(DEPLOYMENTS, namespace)} == {"a", "b"}
    assert view.get(DEPLOYMENTS, namespace, "b")["metadata"]["name"] == "b"
    assert view.get_or_none(DEPLOYMENTS, namespace, "missing") is None
    with pytest.raises(NotFound):
        view.get(DEPLOYMENTS, namespace, "missing")
    assert served(apiserver, "get") - before == 1  # only the first look for "missing"


def test_writes_update_the_view_and_a_new_pass_reads_afresh(
    apiserver: BackgroundAPIServer, kube: KubeAPI, namespace: str
) -> None:
    view = kube.pass_view()
    assert view.get_or_none(DEPLOYMENTS, namespace, "a") is None
    view.create(DEPLOYMENTS, namespace, deployment("a"))
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 1
    view.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 3}})
    before = served(apiserver, "get")
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 3
    assert served(apiserver, "get") == before
    # Someone else scales it: this pass keeps its snapshot, the next pass sees the change.
    kube.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 5}})
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 3
    assert kube.pass_view().get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 5


def test_a_stale_conditional_write_fails_and_is_forgotten(
    apiserver: BackgroundAPIServer, kube: KubeAPI, namespace: str
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    view = kube.pass_view()
    seen = view.get(DEPLOYMENTS, namespace, "a")
    kube.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 2}})
    stale = {"metadata": {"resourceVersion": seen["metadata"]["resourceVersion"]}}
    with pytest.raises(Conflict):
        view.merge_patch(DEPLOYMENTS, namespace, "a", {**stale, "spec": {"replicas": 4}})
    before = served(apiserver, "get")
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 2
    assert served(apiserver, "get") - before == 1


def test_a_deleted_object_is_read_again(
    apiserver: BackgroundAPIServer, kube: KubeAPI, namespace: str
) -> None:
    view: PassView = kube.pass_view()
    view.create(DEPLOYMENTS, namespace, deployment("a"))
    assert view.delete(DEPLOYMENTS, namespace, "a") is True
    assert view.get_or_none(DEPLOYMENTS, namespace, "a") is None
    assert view.delete(DEPLOYMENTS, namespace, "a") is False
