"""The lab's real Prometheus: start-up, scraping, queries, and an outage (stop and restart)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from hack.lab.__main__ import prometheus_health
from hack.lab.prometheus import PrometheusError, PrometheusServer, free_port
from hack.lab.service import DemoService

pytestmark = pytest.mark.lab


def _hit(demo: DemoService, n: int) -> None:
    with requests.Session() as session:
        for _ in range(n):
            session.get(demo.url + "/", timeout=2)


def _wait_value(
    prom: PrometheusServer, promql: str, expected: float, timeout: float = 5.0
) -> float:
    """Polls (bounded) until ``promql`` returns ``expected``; returns the last value seen."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = prom.query(promql)
        if value == expected:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{promql} = {value}, expected {expected}")


def test_prometheus_scrapes_request_counts_of_a_demo_service(
    prometheus: PrometheusServer, demo_service: DemoService
) -> None:
    _hit(demo_service, 7)
    selector = f'http_requests_total{{service="demo",revision="{demo_service.revision}"}}'
    assert _wait_value(prometheus, f"sum({selector})", 7.0) == 7.0
    assert prometheus.query(f'{selector[:-1]},code="500"}}') == 0.0


def test_query_of_an_unknown_series_is_none_and_bad_promql_raises(
    prometheus: PrometheusServer,
) -> None:
    assert prometheus.query('http_requests_total{revision="no-such-revision"}') is None
    with pytest.raises(PrometheusError, match="query failed"):
        prometheus.query("sum(")


def test_stop_and_restart_keep_address_and_history(
    prometheus_factory: Callable[..., PrometheusServer],
) -> None:
    prom = prometheus_factory([], scrape_interval="250ms")
    port, url = prom.port, prom.url
    own_target = f"127.0.0.1:{port}"
    prom.add_target(own_target)
    prom.wait_for_targets_up([own_target], timeout=15)

    prom.stop()
    assert not prom.running
    with pytest.raises(PrometheusError, match="unreachable"):
        prom.query("up")

    prom.restart()
    assert (prom.port, prom.url) == (port, url)
    # Samples scraped before the outage are still there after it.
    assert prom.query(f'max_over_time(up{{instance="{own_target}"}}[5m])') == 1.0


def test_start_failure_reports_the_log_tail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = PrometheusServer([], data_dir=tmp_path, scrape_interval="not-a-duration")
    with pytest.raises(PrometheusError, match="exited on start") as err:
        broken.start()
    assert "not-a-duration" in str(err.value)
    assert not broken.running


def test_a_relative_directory_still_scrapes_its_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m hack.lab up`` defaults to ``--dir .lab``: Prometheus resolves the targets
    file relative to its config's folder, so a relative path there names a file that does not
    exist and nothing is scraped."""
    monkeypatch.chdir(tmp_path)
    prom = PrometheusServer([], data_dir=Path(".lab") / "prometheus", scrape_interval="250ms")
    try:
        prom.start()
        own_target = f"127.0.0.1:{prom.port}"
        prom.add_target(own_target)
        prom.wait_for_targets_up([own_target], timeout=10)
        config = prom.config_path.read_text()
        assert str(tmp_path / ".lab" / "prometheus" / "targets.json") in config
    finally:
        prom.close()


def test_lab_status_says_up_only_when_the_targets_are_scraped(
    prometheus_factory: Callable[..., PrometheusServer],
) -> None:
    """``python -m hack.lab status``: a ready Prometheus that scrapes nothing is not up."""
    prom = prometheus_factory([], scrape_interval="250ms")
    healthy, text = prometheus_health(prom.url)
    assert not healthy
    assert "NOT scraping: no targets" in text

    own_target = f"127.0.0.1:{prom.port}"
    prom.add_target(own_target)
    prom.wait_for_targets_up([own_target], timeout=10)
    assert prometheus_health(prom.url) == (True, "up, 1/1 targets up")

    prom.add_target(f"127.0.0.1:{free_port()}")  # nothing listens there
    deadline = time.monotonic() + 10
    while (found := prometheus_health(prom.url))[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not found[0]
    assert found[1].startswith("ready, 1/2 targets up: "), found

    prom.stop()
    assert prometheus_health(prom.url)[0] is False
