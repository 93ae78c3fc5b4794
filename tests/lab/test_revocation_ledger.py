"""The revocation ledger against the lab cluster's kube-apiserver: one ConfigMap for the cluster,
in the operator's own namespace, written by the operator only; the namespace ledgers of earlier
releases of the operator still refuse what they list.

A version revoked through a shared registry is refused in every namespace (the model's alias is
global); one revoked through a namespace's own ConfigMap store only there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.lab.testing.cluster_fixtures import delete_namespace, new_namespace
from rollwise.adapters.configmaps import ConfigMaps
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.releases import LEDGER_NAME, ReleaseObjects, ledger_key

pytestmark = pytest.mark.lab


@pytest.fixture
def namespaces(lab_cluster: Cluster) -> Iterator[list[str]]:
    """Three namespaces of the test's own: the operator's and two teams'."""
    names = [new_namespace(lab_cluster, "ledger") for _ in range(3)]
    yield names
    for name in names:
        delete_namespace(lab_cluster, name)


def record(release: str) -> dict[str, Any]:
    return {
        "model": "fraud",
        "version": "7",
        "release": release,
        "reason": "bias found",
        "user": "bob",
        "at": "2026-11-22T10:00:00Z",
    }


def test_the_cluster_ledger_refuses_a_shared_model_everywhere_and_a_local_one_locally(
    namespaces: list[str], kube_client: Any
) -> None:
    system, team_a, team_b = namespaces
    kube = KubeAPI(kube_client)
    objects = ReleaseObjects(kube, ledger=(system, LEDGER_NAME))
    assert objects.record_revocation(team_a, record("fraud-7"), "registry/main")
    assert objects.record_revocation(team_a, record("fraud-7b"), "namespace/" + team_a)
    assert not objects.record_revocation(team_a, record("again"), "registry/main"), "idempotent"

    # Written in the operator's namespace, nothing in the team's.
    assert ConfigMaps(kube).get(team_a, LEDGER_NAME) is None
    stored = ConfigMaps(kube).get(system, LEDGER_NAME)
    assert stored is not None
    assert set(stored["data"]) == {
        ledger_key("fraud", "7", "registry/main"),
        ledger_key("fraud", "7", "namespace/" + team_a),
    }

    found = objects.revoked(team_b, "fraud", "7", "registry/main")
    assert found is not None
    assert (found["release"], found["namespace"]) == ("fraud-7", team_a)
    assert objects.revoked(team_b, "fraud", "7", "namespace/" + team_b) is None
    assert objects.revoked(team_a, "fraud", "7", "namespace/" + team_a) is not None
    assert objects.revoked(team_a, "fraud", "8", "registry/main") is None


def test_a_namespace_ledger_of_an_earlier_operator_still_refuses(
    namespaces: list[str], kube_client: Any
) -> None:
    system, team, _ = namespaces
    kube = KubeAPI(kube_client)
    legacy = ReleaseObjects(kube)
    assert legacy.record_revocation(team, record("fraud-7"))
    assert ConfigMaps(kube).get(team, LEDGER_NAME) is not None
    objects = ReleaseObjects(kube, ledger=(system, LEDGER_NAME))
    assert objects.revoked(team, "fraud", "7", "namespace/" + team) is not None
