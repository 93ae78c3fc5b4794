"""Start-up: the settings ConfigMap is read once, through the Kubernetes client, and what it sets
reaches the operator's parts (its Prometheus default, its query bound).

The ConfigMap is served by a canned API endpoint on loopback, so the real client, its URL and
its decoding are exercised."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from rollwise.runtime import logging as rlog
from rollwise.runtime import main as operator_main
from rollwise.runtime.setting_values import SettingsError
from rollwise.runtime.settings import LogFormat, Settings, from_sources

NAMESPACE, NAME = "rollwise", "rollwise-settings"
CONFIGMAP_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{NAME}"
DATA = {
    "prometheusURL": "http://prometheus.monitoring:9090",
    "maxQuerySeconds": "7",
    "resyncSeconds": "45",
}
#: Variables that would pin a setting over the ConfigMap (the environment wins).
PINNING = (
    "ROLLWISE_PROMETHEUS_URL",
    "ROLLWISE_PROMETHEUS_ALLOWED_URLS",
    "ROLLWISE_MAX_QUERY_SECONDS",
)


class _API(BaseHTTPRequestHandler):
    data: dict[str, str] = {}
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path.partition("?")[0])
        if self.path.partition("?")[0] != CONFIGMAP_PATH:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": NAME, "namespace": NAMESPACE},
                "data": type(self).data,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def api_server() -> Iterator[tuple[str, type[_API]]]:
    """A loopback endpoint serving the settings ConfigMap; yields its URL and handler class
    (whose ``data`` the test sets and whose ``paths`` records the requests)."""
    handler = type("API", (_API,), {"data": dict(DATA), "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def api_for(url: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


def named_configmap() -> Settings:
    return from_sources([], {"ROLLWISE_SETTINGS_CONFIGMAP": f"{NAMESPACE}/{NAME}"}, isatty=False)


def test_the_settings_configmap_completes_the_settings(api_server: tuple[str, type[_API]]) -> None:
    url, api = api_server
    settings = operator_main.read_settings_configmap(api_for(url), named_configmap())
    assert settings.prometheus_url == "http://prometheus.monitoring:9090"
    assert settings.max_query_seconds == 7.0
    assert settings.resync_seconds == 45.0
    assert api.paths == [CONFIGMAP_PATH]


def test_no_configmap_named_no_request(api_server: tuple[str, type[_API]]) -> None:
    url, api = api_server
    base = from_sources([], {}, isatty=False)
    assert operator_main.read_settings_configmap(api_for(url), base) == base
    assert api.paths == []


def test_a_bad_configmap_is_refused_at_start_up(api_server: tuple[str, type[_API]]) -> None:
    url, api = api_server
    api.data = {"prometheusUrl": "http://typo:9090"}
    with pytest.raises(SettingsError, match="unknown key"):
        operator_main.read_settings_configmap(api_for(url), named_configmap())


class _Started(Exception):
    """Raised by the stand-in query budget: start-up got as far as building the operator."""


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    rlog.configure(LogFormat.CONSOLE, stream=io.StringIO())  # stops main()'s writer thread
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_the_operator_starts_with_the_configmap_applied(
    api_server: tuple[str, type[_API]],
    monkeypatch: pytest.MonkeyPatch,
    restore_logging: None,
) -> None:
    url, api = api_server
    for name in PINNING:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROLLWISE_SETTINGS_CONFIGMAP", f"{NAMESPACE}/{NAME}")
    monkeypatch.setenv("ROLLWISE_METRICS_PORT", "0")
    monkeypatch.setattr(operator_main, "api_client", lambda connections=None: api_for(url))
    seen: dict[str, Any] = {}

    def query_budget(threads: int, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise _Started

    monkeypatch.setattr(operator_main, "QueryBudget", query_budget)
    with pytest.raises(_Started):
        operator_main.main([])
    assert api.paths == [CONFIGMAP_PATH]
    assert seen["max_timeout"] == 7.0, "the ConfigMap's maxQuerySeconds never reached the budget"
