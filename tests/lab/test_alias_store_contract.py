"""The contract every alias store honours, run against each of them.

A new store is one module in ``rollwise.adapters.registry`` and one entry in ``HARNESSES``: a
function building the store and a way to make versions the store can point at (real model
versions for a registry, made-up targets for a store that keeps whatever it is given).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from hack.lab.mlflow import DIGEST_TAG, MLflowServer
from rollwise.adapters.errors import AliasConflict
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.registry import (
    EXPECT_UNSET,
    AliasStore,
    AliasTarget,
    ConfigMapAliasStore,
    MLflowAliasStore,
    MLflowRegistry,
    NopAliasStore,
)

pytestmark = pytest.mark.lab


@dataclass
class Harness:
    store: AliasStore
    #: ``versions(model, count)``: targets of ``count`` new versions of ``model``.
    versions: Callable[[str, int], list[AliasTarget]]


def made_up_versions(model: str, count: int) -> list[AliasTarget]:
    return [
        AliasTarget(str(n), f"s3://models/{model}/{n}", f"sha256:{n:064x}")
        for n in range(1, count + 1)
    ]


def nop_harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(NopAliasStore(), made_up_versions)


def configmap_harness(request: pytest.FixtureRequest) -> Harness:
    kube_client = request.getfixturevalue("kube_client")
    namespace = request.getfixturevalue("namespace")
    return Harness(
        ConfigMapAliasStore(KubeAPI(kube_client), namespace, "aliases"), made_up_versions
    )


def mlflow_harness(request: pytest.FixtureRequest) -> Harness:
    server: MLflowServer = request.getfixturevalue("mlflow_server")

    def versions(model: str, count: int) -> list[AliasTarget]:
        made = []
        for n in range(count):
            version = server.create_version(
                model, digest=f"sha256:{n:064x}", source=f"s3://models/{model}/{n}"
            )
            tags = {tag["key"]: tag["value"] for tag in version.get("tags", [])}
            made.append(AliasTarget(version["version"], version["source"], tags.get(DIGEST_TAG)))
        return made

    return Harness(MLflowAliasStore(MLflowRegistry("main", server.url)), versions)


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Harness]] = {
    "nop": nop_harness,
    "configmap": configmap_harness,
    "mlflow": mlflow_harness,
}


@pytest.fixture(params=list(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Harness:
    return HARNESSES[request.param](request)


@pytest.fixture
def model() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}"


def test_is_an_alias_store(harness: Harness) -> None:
    assert isinstance(harness.store, AliasStore)


def test_set_get_delete_round_trip(harness: Harness, model: str) -> None:
    store = harness.store
    v1, v2 = harness.versions(model, 2)
    assert store.get(model, "production") is None
    assert store.set(model, "production", v1, expected=EXPECT_UNSET) == v1
    assert store.get(model, "production") == v1
    assert store.set(model, "production", v2, expected=v1.version) == v2
    assert store.get(model, "production") == v2
    store.delete(model, "production", expected=v2.version)
    assert store.get(model, "production") is None


def test_aliases_are_independent(harness: Harness, model: str) -> None:
    store = harness.store
    v1, v2 = harness.versions(model, 2)
    store.set(model, "production", v1, expected=None)
    store.set(model, "staging", v2, expected=None)
    assert store.get(model, "production") == v1
    assert store.get(model, "staging") == v2
    store.delete(model, "staging", expected=None)
    assert store.get(model, "production") == v1


def test_set_and_delete_are_idempotent(harness: Harness, model: str) -> None:
    store = harness.store
    (v1,) = harness.versions(model, 1)
    assert store.set(model, "production", v1, expected=None) == v1
    assert store.set(model, "production", v1, expected=None) == v1
    assert store.set(model, "production", v1, expected=v1.version) == v1
    store.delete(model, "production", expected=None)
    store.delete(model, "production", expected=None)
    store.delete(model, "production", expected=EXPECT_UNSET)
    assert store.get(model, "production") is None


@pytest.mark.parametrize(
    ("expected", "write"),
    [
        pytest.param("2", "set", id="set-other-version"),
        pytest.param(EXPECT_UNSET, "set", id="set-expected-unset"),
        pytest.param("2", "delete", id="delete-other-version"),
        pytest.param(EXPECT_UNSET, "delete", id="delete-expected-unset"),
    ],
)
def test_a_stale_expectation_is_a_conflict_and_writes_nothing(
    harness: Harness, model: str, expected: str, write: str
) -> None:
    store = harness.store
    v1, v2 = harness.versions(model, 2)
    store.set(model, "production", v1, expected=None)

    def attempt() -> None:
        if write == "set":
            store.set(model, "production", v2, expected=expected)
        else:
            store.delete(model, "production", expected=expected)

    with pytest.raises(AliasConflict) as caught:
        attempt()
    assert caught.value.retryable
    assert store.get(model, "production") == v1


def test_expecting_a_version_of_an_unset_alias_is_a_conflict(harness: Harness, model: str) -> None:
    store = harness.store
    (v1,) = harness.versions(model, 1)
    with pytest.raises(AliasConflict):
        store.set(model, "production", v1, expected="1")
    assert store.get(model, "production") is None


def test_flip_back_to_the_previous_version(harness: Harness, model: str) -> None:
    """What a rollback does: the alias returns to the version it held before."""
    store = harness.store
    v1, v2 = harness.versions(model, 2)
    store.set(model, "production", v1, expected=EXPECT_UNSET)
    store.set(model, "production", v2, expected=v1.version)
    assert store.set(model, "production", v1, expected=v2.version) == v1
    assert store.get(model, "production") == v1
