"""Operator settings from flags, environment and the settings ConfigMap."""

from __future__ import annotations

import pytest

from rollwise.runtime.setting_values import SettingsError
from rollwise.runtime.settings import (
    DEFAULT_METRICS_PORT,
    DEFAULT_WORKERS,
    LogFormat,
    apply_configmap,
    from_sources,
    seniority_priority,
)


def test_defaults_are_cluster_wide_standalone_with_metrics_on() -> None:
    s = from_sources([], {}, isatty=False)
    assert s.clusterwide
    assert s.namespaces == ()
    assert s.peering is None
    assert (s.peering_priority, s.peering_lifetime) == (0, 60)
    assert s.liveness is None
    assert s.metrics_port == DEFAULT_METRICS_PORT
    assert s.log_format is LogFormat.JSON
    assert from_sources([], {}, isatty=True).log_format is LogFormat.CONSOLE


def test_replicas_sharing_a_peering_get_distinct_priorities_the_oldest_highest() -> None:
    # kopf pauses every replica that sees a live peer of the same priority: replicas of one
    # Deployment (identical environment) must still end up with distinct ones.
    env = {"ROLLWISE_PEERING": "rollwise"}
    first = from_sources([], env, isatty=False, started_at=1_700_000_000.000)
    second = from_sources([], env, isatty=False, started_at=1_700_000_000.004)
    assert first.peering_priority > second.peering_priority
    assert first.peering_priority == seniority_priority(1_700_000_000.0)
    explicit = {**env, "ROLLWISE_PEERING_PRIORITY": "7"}
    assert from_sources([], explicit, isatty=False, started_at=1.0).peering_priority == 7
    assert from_sources([], {}, isatty=False, started_at=1.0).peering_priority == 0


def test_flags_and_environment() -> None:
    s = from_sources(
        [
            "--namespace",
            "a",
            "--namespace",
            "b",
            "-n",
            "a",
            "--liveness",
            "http://0.0.0.0:8080/healthz",
            "-v",
        ],
        {
            "ROLLWISE_LOG_FORMAT": "Console",
            "ROLLWISE_PEERING": "rollwise",
            "ROLLWISE_PEERING_PRIORITY": "-5",
            "ROLLWISE_PEERING_LIFETIME": "7",
            "ROLLWISE_SETTINGS_CONFIGMAP": "rollwise-system/rollwise-settings",
            "ROLLWISE_METRICS_PORT": "0",
            "ROLLWISE_PROMETHEUS_URL": "http://prometheus.monitoring:9090/",
            "ROLLWISE_WORKERS": "12",
            "POD_NAME": "rollwise-0",
            "POD_NAMESPACE": "rollwise-system",
        },
        isatty=False,
    )
    assert s.namespaces == ("a", "b")
    assert not s.clusterwide
    assert s.liveness == "http://0.0.0.0:8080/healthz"
    assert s.verbose
    assert s.log_format is LogFormat.CONSOLE
    assert s.peering == "rollwise"
    assert (s.peering_priority, s.peering_lifetime) == (-5, 7)
    assert s.settings_configmap == ("rollwise-system", "rollwise-settings")
    assert s.metrics_port == 0
    assert s.prometheus_url == "http://prometheus.monitoring:9090"
    assert (s.pod_name, s.pod_namespace) == ("rollwise-0", "rollwise-system")
    assert s.workers == 12
    assert from_sources([], {}, isatty=False).workers == DEFAULT_WORKERS


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        pytest.param([], {"ROLLWISE_LOG_FORMAT": "xml"}, "ROLLWISE_LOG_FORMAT", id="log-format"),
        pytest.param(
            [], {"ROLLWISE_METRICS_PORT": "70000"}, "ROLLWISE_METRICS_PORT", id="port-range"
        ),
        pytest.param(
            [], {"ROLLWISE_METRICS_PORT": "http"}, "ROLLWISE_METRICS_PORT", id="port-text"
        ),
        pytest.param(
            [], {"ROLLWISE_PROMETHEUS_URL": "prometheus:9090"}, "ROLLWISE_PROMETHEUS_URL", id="url"
        ),
        pytest.param(
            [], {"ROLLWISE_SETTINGS_CONFIGMAP": "only-name"}, "NAMESPACE/NAME", id="configmap"
        ),
        pytest.param([], {"ROLLWISE_PEERING": "Not_Valid"}, "ROLLWISE_PEERING", id="peering"),
        pytest.param(
            [], {"ROLLWISE_PEERING_PRIORITY": "high"}, "ROLLWISE_PEERING_PRIORITY", id="priority"
        ),
        pytest.param(
            [], {"ROLLWISE_PEERING_LIFETIME": "0"}, "ROLLWISE_PEERING_LIFETIME", id="lifetime"
        ),
        pytest.param([], {"ROLLWISE_WORKERS": "0"}, "ROLLWISE_WORKERS", id="workers-zero"),
        pytest.param([], {"ROLLWISE_WORKERS": "many"}, "ROLLWISE_WORKERS", id="workers-text"),
        pytest.param(["--namespace", "UPPER"], {}, "--namespace", id="namespace"),
        pytest.param(["--liveness", "/healthz"], {}, "--liveness", id="liveness"),
    ],
)
def test_bad_values_fail_naming_the_setting(
    argv: list[str], env: dict[str, str], names: str
) -> None:
    with pytest.raises(SettingsError, match=names):
        from_sources(argv, env, isatty=False)


def test_configmap_completes_settings_and_environment_wins() -> None:
    base = from_sources([], {}, isatty=False)
    s = apply_configmap(base, {"prometheusURL": "http://p:9090", "resyncSeconds": "60"}, env={})
    assert s.prometheus_url == "http://p:9090"
    assert s.resync_seconds == 60
    env = {"ROLLWISE_PROMETHEUS_URL": "http://env:9090"}
    pinned = from_sources([], env, isatty=False)
    assert apply_configmap(pinned, {"prometheusURL": "http://p:9090"}, env=env).prometheus_url == (
        "http://env:9090"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"prometheusUrl": "http://p"}, "unknown key", id="misspelt-key"),
        pytest.param({"resyncSeconds": "0"}, "greater than 0", id="resync-zero"),
        pytest.param({"prometheusURL": "p:9090"}, "http", id="bad-url"),
    ],
)
def test_configmap_refuses_bad_data(data: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        apply_configmap(from_sources([], {}, isatty=False), data, env={})


def test_the_entry_point_refuses_bad_settings_with_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rollwise.runtime.main import main  # noqa: PLC0415 - imports kopf

    monkeypatch.setenv("ROLLWISE_METRICS_PORT", "not-a-port")
    assert main([]) == 2
    assert "ROLLWISE_METRICS_PORT" in capsys.readouterr().err


def test_tenancy_defaults_allow_only_the_default_prometheus_and_bound_each_namespace() -> None:
    s = from_sources([], {"ROLLWISE_PROMETHEUS_URL": "http://prom:9090/"}, isatty=False)
    assert s.allowed_prometheus == frozenset({"http://prom:9090"})
    assert (s.namespace_passes, s.query_threads, s.namespace_queries) == (3, 8, 2)
    assert s.max_query_seconds == 30.0
    assert from_sources([], {}, isatty=False).allowed_prometheus == frozenset()


def test_tenancy_settings_from_environment_and_configmap() -> None:
    env = {
        "ROLLWISE_PROMETHEUS_URL": "http://prom:9090",
        "ROLLWISE_PROMETHEUS_ALLOWED_URLS": "http://a:9090, https://b.example/prom/",
        "ROLLWISE_NAMESPACE_PASSES": "0",
        "ROLLWISE_QUERY_THREADS": "16",
        "ROLLWISE_NAMESPACE_QUERIES": "4",
        "ROLLWISE_MAX_QUERY_SECONDS": "12.5",
    }
    s = from_sources([], env, isatty=False)
    assert s.allowed_prometheus == frozenset(
        {"http://prom:9090", "http://a:9090", "https://b.example/prom"}
    )
    assert (s.namespace_passes, s.query_threads, s.namespace_queries) == (0, 16, 4)
    assert s.max_query_seconds == 12.5
    base = from_sources([], {}, isatty=False)
    from_map = apply_configmap(
        base, {"prometheusAllowedURLs": "http://c:9090\nhttp://d:9090", "maxQuerySeconds": "5"}, {}
    )
    assert from_map.allowed_prometheus == frozenset({"http://c:9090", "http://d:9090"})
    assert from_map.max_query_seconds == 5.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"ROLLWISE_PROMETHEUS_ALLOWED_URLS": "prom:9090"},
            r"not an http\(s\) URL",
            id="no-scheme",
        ),
        pytest.param({"ROLLWISE_QUERY_THREADS": "0"}, "at least 1", id="no-query-thread"),
        pytest.param({"ROLLWISE_MAX_QUERY_SECONDS": "-1"}, "greater than 0", id="negative"),
    ],
)
def test_bad_tenancy_settings_fail_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_sources([], env, isatty=False)


def test_web_providers_from_environment_and_configmap() -> None:
    value = (
        '[{"name": "slo", "url": "https://slo.example/api", "headersDir": "/etc/web/slo"},'
        ' {"name": "public", "url": "http://status.example/"}]'
    )
    s = from_sources([], {"ROLLWISE_WEB_PROVIDERS": value}, isatty=False)
    assert [(p.name, p.url, p.headers_dir) for p in s.web_providers] == [
        ("slo", "https://slo.example/api", "/etc/web/slo"),
        ("public", "http://status.example", None),
    ]
    assert s.web_provider_names == frozenset({"slo", "public"})
    from_map = apply_configmap(
        from_sources([], {}, isatty=False),
        {"webProviders": '[{"name": "a", "url": "https://a.example"}]'},
        {},
    )
    assert from_map.web_provider_names == frozenset({"a"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("{", "not JSON", id="not-json"),
        pytest.param('{"name": "a"}', "a JSON list", id="not-a-list"),
        pytest.param('[{"name": "A_B", "url": "https://a"}]', "not a DNS label", id="bad-name"),
        pytest.param('[{"name": "a", "url": "ftp://a"}]', r"not an http\(s\) URL", id="bad-url"),
        pytest.param(
            '[{"name": "a", "url": "https://a"}, {"name": "a", "url": "https://b"}]',
            "listed twice",
            id="duplicate",
        ),
        pytest.param(
            '[{"name": "a", "url": "https://a", "token": "x"}]', "expected an object", id="key"
        ),
    ],
)
def test_bad_web_providers_fail_naming_the_setting(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_sources([], {"ROLLWISE_WEB_PROVIDERS": value}, isatty=False)
