"""``PassView``: one reconcile pass reads each object from the API server at most once.

Requests are counted from kube-apiserver's audit log (written before each response), so these
tests prove what reaches the server, not what the view believes it saved.
"""

from __future__ import annotations

from typing import Any

import pytest

from hack.cluster import ADMIN, Cluster, iter_audit_events
from rollwise.adapters.errors import Conflict, NotFound
from rollwise.adapters.kube import DEPLOYMENTS, SERVICES, KubeAPI, PassView
from rollwise.adapters.watch_cache import WatchCache

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


class Served:
    """``served(verb)``: how many requests of ``verb`` on Deployments of the test's namespace
    the administrator (these tests' client) made, by the audit log."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace

    def __call__(self, verb: str) -> int:
        return sum(
            1
            for event in iter_audit_events(self.cluster.audit_log)
            if event.get("verb") == verb
            and event.get("user", {}).get("username") == ADMIN
            and event.get("objectRef", {}).get("resource") == "deployments"
            and event.get("objectRef", {}).get("namespace") == self.namespace
        )


@pytest.fixture
def served(lab_cluster: Cluster, namespace: str) -> Served:
    return Served(lab_cluster, namespace)


@pytest.fixture
def kube(kube_client: Any) -> KubeAPI:
    return KubeAPI(kube_client)


def test_a_pass_reads_an_object_once_and_hands_out_copies(
    served: Served, kube: KubeAPI, namespace: str
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    view = kube.pass_view()
    before = served("get")
    first = view.get(DEPLOYMENTS, namespace, "a")
    first["spec"]["replicas"] = 99  # a caller editing what it got
    again = view.get(DEPLOYMENTS, namespace, "a")
    assert served("get") - before == 1
    assert again["spec"]["replicas"] == 1
    assert view.requests_saved == 1


def test_listed_objects_and_absent_ones_are_not_read_again(
    served: Served, kube: KubeAPI, namespace: str
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    kube.create(DEPLOYMENTS, namespace, deployment("b"))
    view = kube.pass_view()
    before = served("get")
    assert {d["metadata"]["name"] for d in view.list(DEPLOYMENTS, namespace)} == {"a", "b"}
    assert view.get(DEPLOYMENTS, namespace, "b")["metadata"]["name"] == "b"
    assert view.get_or_none(DEPLOYMENTS, namespace, "missing") is None
    with pytest.raises(NotFound):
        view.get(DEPLOYMENTS, namespace, "missing")
    assert served("get") - before == 1  # only the first look for "missing"


def test_writes_update_the_view_and_a_new_pass_reads_afresh(
    served: Served, kube: KubeAPI, namespace: str
) -> None:
    view = kube.pass_view()
    assert view.get_or_none(DEPLOYMENTS, namespace, "a") is None
    view.create(DEPLOYMENTS, namespace, deployment("a"))
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 1
    view.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 3}})
    before = served("get")
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 3
    assert served("get") == before
    # Someone else scales it: this pass keeps its snapshot, the next pass sees the change.
    kube.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 5}})
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 3
    assert kube.pass_view().get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 5


def test_a_stale_conditional_write_fails_and_is_forgotten(
    served: Served, kube: KubeAPI, namespace: str
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    view = kube.pass_view()
    seen = view.get(DEPLOYMENTS, namespace, "a")
    kube.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 2}})
    stale = {"metadata": {"resourceVersion": seen["metadata"]["resourceVersion"]}}
    with pytest.raises(Conflict):
        view.merge_patch(DEPLOYMENTS, namespace, "a", {**stale, "spec": {"replicas": 4}})
    before = served("get")
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 2
    assert served("get") - before == 1


def test_a_deleted_object_is_read_again(served: Served, kube: KubeAPI, namespace: str) -> None:
    view: PassView = kube.pass_view()
    view.create(DEPLOYMENTS, namespace, deployment("a"))
    assert view.delete(DEPLOYMENTS, namespace, "a") is True
    assert view.get_or_none(DEPLOYMENTS, namespace, "a") is None
    assert view.delete(DEPLOYMENTS, namespace, "a") is False


# ------------------------------------------------------------------ with a watch cache

SELECTOR = "rollwise.dev/rollout=web"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> WatchCache:
    cache = WatchCache(max_age=60.0, clock=clock)
    cache.watch(DEPLOYMENTS, required_label="rollwise.dev/rollout")
    return cache


def cached_view(kube: KubeAPI, cache: WatchCache) -> PassView:
    return kube.pass_view(cache)


def test_a_pass_reads_what_the_watch_delivered_without_asking_the_server(
    served: Served, kube: KubeAPI, cache: WatchCache, namespace: str
) -> None:
    created = kube.create(DEPLOYMENTS, namespace, deployment("a"))
    cache.observe(DEPLOYMENTS, created)  # what the watch's ADDED event carries
    before = served("get")
    view = cached_view(kube, cache)
    got = view.get(DEPLOYMENTS, namespace, "a")
    got["spec"]["replicas"] = 99  # the caller's copy, not the cache's
    assert view.get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 1
    assert cached_view(kube, cache).get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 1
    assert served("get") == before
    assert cache.hits == 2


def test_a_pass_without_the_cache_in_its_context_reads_the_server(
    served: Served, kube: KubeAPI, cache: WatchCache, namespace: str
) -> None:
    cache.observe(DEPLOYMENTS, kube.create(DEPLOYMENTS, namespace, deployment("a")))
    before = served("get")
    assert kube.pass_view().get(DEPLOYMENTS, namespace, "a")["metadata"]["name"] == "a"
    assert served("get") - before == 1


def test_the_operators_own_write_is_read_back_and_older_events_do_not_undo_it(
    served: Served, kube: KubeAPI, cache: WatchCache, namespace: str
) -> None:
    created = kube.create(DEPLOYMENTS, namespace, deployment("a"))
    cache.observe(DEPLOYMENTS, created)
    cached_view(kube, cache).merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 3}})
    cache.observe(DEPLOYMENTS, created)  # the watch event of the create, arriving late
    before = served("get")
    assert cached_view(kube, cache).get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 3
    assert served("get") == before
    # Someone else's newer write reaches the cache through the watch.
    cache.observe(
        DEPLOYMENTS, kube.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 7}})
    )
    assert cached_view(kube, cache).get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 7


def test_a_conflicting_write_makes_the_next_pass_read_the_server(
    served: Served, kube: KubeAPI, cache: WatchCache, namespace: str
) -> None:
    cache.observe(DEPLOYMENTS, kube.create(DEPLOYMENTS, namespace, deployment("a")))
    kube.merge_patch(DEPLOYMENTS, namespace, "a", {"spec": {"replicas": 2}})  # watch is behind
    view = cached_view(kube, cache)
    seen = view.get(DEPLOYMENTS, namespace, "a")
    assert seen["spec"]["replicas"] == 1
    stale = {"metadata": {"resourceVersion": seen["metadata"]["resourceVersion"]}}
    with pytest.raises(Conflict):
        view.merge_patch(DEPLOYMENTS, namespace, "a", {**stale, "spec": {"replicas": 4}})
    before = served("get")
    assert cached_view(kube, cache).get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 2
    assert served("get") - before == 1
    # The server's answer is cached again: the pass after that reads nothing.
    assert cached_view(kube, cache).get(DEPLOYMENTS, namespace, "a")["spec"]["replicas"] == 2
    assert served("get") - before == 1


def test_a_listing_is_served_once_primed_and_follows_creates_and_deletes(
    served: Served, kube: KubeAPI, cache: WatchCache, namespace: str
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    other = deployment("x")
    other["metadata"]["labels"] = {"rollwise.dev/rollout": "other"}
    kube.create(DEPLOYMENTS, namespace, other)
    first = cached_view(kube, cache)
    assert [d["metadata"]["name"] for d in first.list(DEPLOYMENTS, namespace, SELECTOR)] == ["a"]
    lists = served("list")
    view = cached_view(kube, cache)
    b = view.create(DEPLOYMENTS, namespace, deployment("b"))
    old_a = view.get(DEPLOYMENTS, namespace, "a")
    assert view.delete(DEPLOYMENTS, namespace, "a") is True
    cache.observe(DEPLOYMENTS, old_a)  # a late event of the deleted one
    names = {
        d["metadata"]["name"]
        for d in cached_view(kube, cache).list(DEPLOYMENTS, namespace, SELECTOR)
    }
    assert names == {"b"}
    assert served("list") == lists
    assert b["metadata"]["name"] == "b"


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param(None, id="no-selector"),
        pytest.param("app=web", id="without-the-watched-label"),
        pytest.param("rollwise.dev/rollout!=web", id="inequality"),
        pytest.param("rollwise.dev/rollout in (web)", id="set-based"),
    ],
)
def test_listings_the_watch_does_not_cover_go_to_the_server(
    served: Served,
    kube: KubeAPI,
    cache: WatchCache,
    namespace: str,
    selector: str | None,
) -> None:
    kube.create(DEPLOYMENTS, namespace, deployment("a"))
    cached_view(kube, cache).list(DEPLOYMENTS, namespace, selector)
    before = served("list")
    cached_view(kube, cache).list(DEPLOYMENTS, namespace, selector)
    assert served("list") - before == 1


def test_entries_older_than_max_age_are_read_again(
    served: Served,
    kube: KubeAPI,
    cache: WatchCache,
    clock: Clock,
    namespace: str,
) -> None:
    cache.observe(DEPLOYMENTS, kube.create(DEPLOYMENTS, namespace, deployment("a")))
    cached_view(kube, cache).list(DEPLOYMENTS, namespace, SELECTOR)
    clock.now += 61.0
    before_get, before_list = served("get"), served("list")
    view = cached_view(kube, cache)
    view.list(DEPLOYMENTS, namespace, SELECTOR)
    assert served("list") - before_list == 1
    cached_view(kube, cache).get(DEPLOYMENTS, namespace, "a")
    assert served("get") == before_get  # the listing just confirmed it


def test_only_watched_resources_with_integer_versions_are_kept() -> None:
    cache = WatchCache()
    cache.watch(DEPLOYMENTS, required_label="rollwise.dev/rollout")
    body = {"metadata": {"name": "s", "namespace": "ns", "resourceVersion": "5"}}
    cache.observe(SERVICES, body)
    assert cache.lookup(SERVICES, "ns", "s") is None
    cache.observe(DEPLOYMENTS, {"metadata": {**body["metadata"], "resourceVersion": "a1"}})
    assert cache.lookup(DEPLOYMENTS, "ns", "s") is None
    cache.observe(DEPLOYMENTS, body)
    assert cache.lookup(DEPLOYMENTS, "ns", "s") == body
