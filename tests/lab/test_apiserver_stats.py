"""The API emulator's request counters (GET/DELETE /lab/stats), which the benchmarks under
``hack/bench`` use to count an operator's writes per verb and resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hack.lab.kube.server import BackgroundAPIServer

pytestmark = pytest.mark.lab


@pytest.fixture
def server() -> Iterator[BackgroundAPIServer]:
    with BackgroundAPIServer() as running:
        yield running


def counts(url: str, method: str = "GET") -> dict[tuple[str, str, str], int]:
    answer = requests.request(method, f"{url}/lab/stats", timeout=5)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["requests"]
    return {(r["client"], r["verb"], r["resource"]): r["count"] for r in rows}


def test_requests_are_counted_per_client_verb_and_subresource(
    server: BackgroundAPIServer,
) -> None:
    url = server.url
    cms = f"{url}/api/v1/namespaces/default/configmaps"
    deploys = f"{url}/apis/apps/v1/namespaces/default/deployments"
    bench = {"User-Agent": "bench-client/1.0 (test)"}
    other = {"User-Agent": "other"}
    assert counts(url) == {}

    created = requests.post(
        cms, json={"metadata": {"name": "a"}, "data": {"k": "v"}}, headers=bench, timeout=5
    )
    assert created.status_code == 201
    for _ in range(2):
        patched = requests.patch(
            f"{cms}/a",
            data='{"data": {"k": "w"}}',
            headers={**bench, "Content-Type": "application/merge-patch+json"},
            timeout=5,
        )
        assert patched.status_code == 200
    assert requests.get(f"{cms}/a", headers=other, timeout=5).status_code == 200
    assert requests.get(cms, headers=other, timeout=5).status_code == 200
    # A failed request is still a request the server handled.
    missing = requests.patch(
        f"{deploys}/nope/status",
        data="{}",
        headers={**bench, "Content-Type": "application/merge-patch+json"},
        timeout=5,
    )
    assert missing.status_code == 404

    assert counts(url) == {
        ("bench-client", "create", "configmaps"): 1,
        ("bench-client", "patch", "configmaps"): 2,
        ("other", "get", "configmaps"): 1,
        ("other", "list", "configmaps"): 1,
        ("bench-client", "patch", "deployments/status"): 1,
    }
    # DELETE resets the counters and answers the (now empty) counts.
    assert counts(url, "DELETE") == {}
    assert counts(url) == {}
    assert requests.put(f"{url}/lab/stats", timeout=5).status_code == 405
