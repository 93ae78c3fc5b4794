"""The synthetic service: answers by its error ratio, exports its metrics, and is steered at run
time through methods and over HTTP; its error ratio shows in real Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from hack.lab._support import BackgroundLoop
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import DemoService, ServiceRegistry

pytestmark = pytest.mark.lab


def _codes(demo: DemoService, n: int) -> list[int]:
    with requests.Session() as session:
        return [session.get(demo.url + "/", timeout=2).status_code for _ in range(n)]


@pytest.mark.parametrize(
    ("error_ratio", "expected_errors"),
    [
        pytest.param(0.0, 0, id="healthy"),
        pytest.param(1.0, 40, id="always-failing"),
    ],
)
def test_error_ratio_decides_the_status_codes(
    make_demo_service: Callable[..., DemoService], error_ratio: float, expected_errors: int
) -> None:
    demo = make_demo_service(error_ratio=error_ratio)
    codes = _codes(demo, 40)
    assert codes.count(500) == expected_errors
    assert codes.count(200) == 40 - expected_errors


def test_same_seed_gives_the_same_answers(lab_loop: BackgroundLoop) -> None:
    runs = []
    for _ in range(2):
        demo = lab_loop.run(DemoService("demo", "seeded", seed=42).start())
        try:
            demo.configure(error_ratio=0.5)
            runs.append(_codes(demo, 30))
        finally:
            lab_loop.run(demo.stop())
    assert runs[0] == runs[1]
    assert 0 < runs[0].count(500) < 30


def test_control_endpoint_changes_behaviour_and_rejects_bad_input(
    demo_service: DemoService,
) -> None:
    resp = requests.post(
        demo_service.url + "/control", json={"errorRatio": 1.0, "latencyMs": 300}, timeout=2
    )
    assert resp.status_code == 200
    assert resp.json()["errorRatio"] == 1.0
    assert requests.get(demo_service.url + "/control", timeout=2).json()["latencyMs"] == 300
    assert _codes(demo_service, 5) == [500] * 5

    assert (
        requests.post(demo_service.url + "/control", json={"errorRatio": 2}, timeout=2).status_code
        == 400
    )
    assert (
        requests.post(demo_service.url + "/control", json={"bogus": 1}, timeout=2).status_code
        == 400
    )
    assert demo_service.behaviour.error_ratio == 1.0


def test_metrics_carry_service_revision_and_code_labels(demo_service: DemoService) -> None:
    demo_service.configure(error_ratio=0.0, latency_ms=30, jitter_ms=0)
    _codes(demo_service, 3)
    text = requests.get(demo_service.url + "/metrics", timeout=2).text
    rev = demo_service.revision
    # No namespace given: the label is there, empty (the lab controller gives the pods').
    labels = f'namespace="",revision="{rev}",service="demo"'
    assert f'http_requests_total{{code="200",mirrored="false",{labels}}} 3.0' in text
    assert f'http_requests_total{{code="500",mirrored="false",{labels}}} 0.0' in text
    # 30 ms falls in the 0.05 s bucket, not in the 0.025 s one.
    assert f'http_request_duration_seconds_bucket{{le="0.025",{labels}}} 0.0' in text
    assert f'http_request_duration_seconds_bucket{{le="0.05",{labels}}} 3.0' in text


def test_mirrored_copies_are_labelled_apart_by_their_shadow_host(demo_service: DemoService) -> None:
    """A mirroring proxy appends ``-shadow`` to a copy's Host (Envoy): the service counts those
    with ``mirrored="true"``, the others with ``mirrored="false"``."""
    demo_service.configure(error_ratio=0.0, latency_ms=1, jitter_ms=0)
    _codes(demo_service, 2)
    with requests.Session() as session:
        for host in ("demo.lab-shadow", "demo.lab-shadow:8080"):
            session.get(demo_service.url + "/", headers={"Host": host}, timeout=2)
    text = requests.get(demo_service.url + "/metrics", timeout=2).text
    labels = f'namespace="",revision="{demo_service.revision}",service="demo"'
    assert f'http_requests_total{{code="200",mirrored="false",{labels}}} 2.0' in text
    assert f'http_requests_total{{code="200",mirrored="true",{labels}}} 2.0' in text
    assert demo_service.mirrored == 2


def test_a_revision_counts_in_the_namespace_it_last_appeared_in(
    lab_loop: BackgroundLoop, service_registry: ServiceRegistry
) -> None:
    """The same pod template in two namespaces is one revision hash: its requests carry the
    namespace it appeared in last, so each workload's queries select its own series."""
    revision = "same-template"
    demo = lab_loop.run(service_registry.ensure("demo", revision, namespace="istio"))
    try:
        _codes(demo, 2)
        again = lab_loop.run(service_registry.ensure("demo", revision, namespace="ratio"))
        assert again is demo
        _codes(demo, 3)
        text = requests.get(demo.url + "/metrics", timeout=2).text
        for namespace, count in (("istio", 2), ("ratio", 3)):
            labels = f'namespace="{namespace}",revision="{revision}",service="demo"'
            assert f'http_requests_total{{code="200",mirrored="false",{labels}}} {count}.0' in text
    finally:
        lab_loop.run(service_registry.remove(revision))


def test_hub_control_sets_running_revisions_and_defaults_for_later_ones(
    lab_loop: BackgroundLoop,
    service_registry: ServiceRegistry,
    make_demo_service: Callable[..., DemoService],
) -> None:
    hub = f"http://{service_registry.hub_address}"
    running = make_demo_service()
    assert requests.post(
        f"{hub}/control/{running.revision}", json={"errorRatio": 0.25}, timeout=2
    ).ok
    assert running.behaviour.error_ratio == 0.25

    later = f"later-{running.revision}"
    assert requests.post(f"{hub}/control/{later}", json={"latencyMs": 500}, timeout=2).ok
    started = make_demo_service(revision=later)
    assert started.behaviour.latency_ms == 500
    listing = requests.get(f"{hub}/revisions", timeout=2).json()
    assert listing[running.revision]["errorRatio"] == 0.25


def test_error_ratio_control_is_observed_in_prometheus(
    prometheus: PrometheusServer, make_demo_service: Callable[..., DemoService]
) -> None:
    demo = make_demo_service(error_ratio=0.0)
    _codes(demo, 20)
    requests.post(demo.url + "/control", json={"errorRatio": 1.0}, timeout=2).raise_for_status()
    _codes(demo, 20)
    sel = f'service="demo",revision="{demo.revision}"'
    query = f'sum(http_requests_total{{{sel},code=~"5.."}}) / sum(http_requests_total{{{sel}}})'
    deadline = time.monotonic() + 5
    ratio = None
    while time.monotonic() < deadline:
        ratio = prometheus.query(query)
        if ratio == 0.5:
            break
        time.sleep(0.1)
    assert ratio == 0.5
