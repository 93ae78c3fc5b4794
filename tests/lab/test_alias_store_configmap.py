"""The ConfigMap alias store against the lab cluster's kube-apiserver: the stored record,
optimistic concurrency under real concurrent writers, and reads through the API."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.adapters.errors import AliasConflict, RegistryError
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.registry.base import EXPECT_UNSET, AliasTarget
from rollwise.adapters.registry.configmap import ConfigMapAliasStore

pytestmark = pytest.mark.lab

NOW = datetime(2026, 11, 22, 2, 0, 0, tzinfo=UTC)


def target(version: str) -> AliasTarget:
    return AliasTarget(version, f"s3://models/fraud/{version}", f"sha256:{version * 8}")


def make_store(kube_client: Any, namespace: str) -> ConfigMapAliasStore:
    return ConfigMapAliasStore(KubeAPI(kube_client), namespace, "aliases", clock=lambda: NOW)


def read_configmap(kube_client: Any, namespace: str) -> dict[str, Any]:
    from kubernetes import client  # noqa: PLC0415

    response = client.CoreV1Api(kube_client).read_namespaced_config_map(
        "aliases", namespace, _preload_content=False
    )
    body: dict[str, Any] = json.loads(response.data)
    return body


def test_set_creates_the_configmap_with_a_readable_record(kube_client: Any, namespace: str) -> None:
    store = make_store(kube_client, namespace)
    assert store.get("team/fraud", "production") is None
    assert store.set("team/fraud", "production", target("3"), expected=EXPECT_UNSET) == target("3")
    configmap = read_configmap(kube_client, namespace)
    assert configmap["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "rollwise"}
    assert json.loads(configmap["data"]["team_2ffraud.production"]) == {
        "version": "3",
        "uri": "s3://models/fraud/3",
        "digest": "sha256:33333333",
        "updatedAt": "2026-11-22T02:00:00Z",
    }
    assert store.get("team/fraud", "production") == target("3")


def test_idempotent_set_does_not_write(kube_client: Any, namespace: str) -> None:
    store = make_store(kube_client, namespace)
    store.set("fraud", "production", target("1"), expected=None)
    before = read_configmap(kube_client, namespace)["metadata"]["resourceVersion"]
    later = ConfigMapAliasStore(
        KubeAPI(kube_client), namespace, "aliases", clock=lambda: datetime.now(UTC)
    )
    assert later.set("fraud", "production", target("1"), expected="1") == target("1")
    after = read_configmap(kube_client, namespace)
    assert after["metadata"]["resourceVersion"] == before
    assert json.loads(after["data"]["fraud.production"])["updatedAt"] == "2026-11-22T02:00:00Z"


def test_delete_keeps_other_aliases(kube_client: Any, namespace: str) -> None:
    store = make_store(kube_client, namespace)
    store.set("fraud", "production", target("1"), expected=None)
    store.set("fraud", "staging", target("2"), expected=None)
    store.delete("fraud", "production", expected="1")
    assert store.get("fraud", "production") is None
    assert store.get("fraud", "staging") == target("2")
    assert set(read_configmap(kube_client, namespace)["data"]) == {"fraud.staging"}


def test_a_foreign_value_is_a_registry_error(kube_client: Any, namespace: str) -> None:
    store = make_store(kube_client, namespace)
    store.set("fraud", "staging", target("2"), expected=None)
    from kubernetes import client  # noqa: PLC0415

    client.CoreV1Api(kube_client).patch_namespaced_config_map(
        "aliases", namespace, {"data": {"fraud.production": "v7"}}
    )
    with pytest.raises(RegistryError, match="not an alias record"):
        store.get("fraud", "production")


def run_concurrently(count: int, write: Any) -> list[BaseException | AliasTarget | None]:
    """Runs ``write(i)`` in ``count`` threads released together; their results or errors."""
    barrier = threading.Barrier(count, timeout=10)
    results: list[BaseException | AliasTarget | None] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = write(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_concurrent_flips_from_the_same_version_have_one_winner(
    kube_client: Any, namespace: str
) -> None:
    make_store(kube_client, namespace).set("fraud", "production", target("1"), expected=None)
    stores = [make_store(kube_client, namespace) for _ in range(4)]
    results = run_concurrently(
        4, lambda i: stores[i].set("fraud", "production", target(str(i + 2)), expected="1")
    )
    winners = [r for r in results if isinstance(r, AliasTarget)]
    losers = [r for r in results if isinstance(r, AliasConflict)]
    assert len(winners) == 1, results
    assert len(losers) == 3, results
    assert make_store(kube_client, namespace).get("fraud", "production") == winners[0]


def test_concurrent_writers_of_different_aliases_all_land(kube_client: Any, namespace: str) -> None:
    stores = [make_store(kube_client, namespace) for _ in range(4)]
    results = run_concurrently(
        4, lambda i: stores[i].set(f"model-{i}", "production", target(str(i)), expected=None)
    )
    assert results == [target(str(i)) for i in range(4)]
    data = read_configmap(kube_client, namespace)["data"]
    assert sorted(data) == [f"model-{i}.production" for i in range(4)]


def test_a_stale_expected_version_is_refused_without_writing(
    kube_client: Any, namespace: str
) -> None:
    store = make_store(kube_client, namespace)
    store.set("fraud", "production", target("1"), expected=None)
    other = make_store(kube_client, namespace)
    other.set("fraud", "production", target("2"), expected="1")
    with pytest.raises(AliasConflict, match="is at version '2', expected version '1'"):
        store.set("fraud", "production", target("3"), expected="1")
    with pytest.raises(AliasConflict):
        store.delete("fraud", "production", expected="1")
    assert store.get("fraud", "production") == target("2")


class InterleavedStore(ConfigMapAliasStore):
    """A store that lets another writer in between its read and its write, ``times`` times:
    the race optimistic concurrency exists for, made deterministic."""

    def __init__(self, kube_client: Any, namespace: str, intrude: Any, times: int = 1) -> None:
        super().__init__(KubeAPI(kube_client), namespace, "aliases", clock=lambda: NOW)
        self.intrude = intrude
        self.times = times
        self.reads = 0

    def _read(self) -> dict[str, Any] | None:
        configmap = super()._read()
        self.reads += 1
        if self.times > 0:
            self.times -= 1
            self.intrude(self.reads)
        return configmap


def test_a_write_to_another_alias_in_between_is_retried(kube_client: Any, namespace: str) -> None:
    other = make_store(kube_client, namespace)
    other.set("fraud", "staging", target("1"), expected=None)
    store = InterleavedStore(
        kube_client,
        namespace,
        lambda n: other.set("fraud", "staging", target(str(n + 1)), expected=None),
    )
    assert store.set("fraud", "production", target("5"), expected=EXPECT_UNSET) == target("5")
    # read, 409 on the stale resourceVersion, read again, write, read back
    assert store.reads == 3
    assert other.get("fraud", "staging") == target("2")
    assert other.get("fraud", "production") == target("5")


def test_a_flip_of_the_same_alias_in_between_is_a_conflict(
    kube_client: Any, namespace: str
) -> None:
    other = make_store(kube_client, namespace)
    other.set("fraud", "production", target("1"), expected=None)
    store = InterleavedStore(
        kube_client,
        namespace,
        lambda _: other.set("fraud", "production", target("9"), expected="1"),
    )
    with pytest.raises(AliasConflict, match="is at version '9', expected version '1'"):
        store.set("fraud", "production", target("2"), expected="1")
    assert other.get("fraud", "production") == target("9")


def test_a_creation_in_between_is_retried(kube_client: Any, namespace: str) -> None:
    other = make_store(kube_client, namespace)
    store = InterleavedStore(
        kube_client,
        namespace,
        lambda _: other.set("fraud", "staging", target("1"), expected=None),
    )
    store.set("fraud", "production", target("2"), expected=EXPECT_UNSET)
    assert set(read_configmap(kube_client, namespace)["data"]) == {
        "fraud.staging",
        "fraud.production",
    }


def test_a_race_lost_every_time_gives_up_with_a_conflict(kube_client: Any, namespace: str) -> None:
    other = make_store(kube_client, namespace)
    other.set("fraud", "staging", target("0"), expected=None)
    store = InterleavedStore(
        kube_client,
        namespace,
        lambda n: other.set("fraud", "staging", target(str(n)), expected=None),
        times=100,
    )
    with pytest.raises(AliasConflict, match="changed under 5 consecutive writes"):
        store.set("fraud", "production", target("2"), expected=None)
    assert store.reads == 5
    assert other.get("fraud", "production") is None
