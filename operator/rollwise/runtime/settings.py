"""The operator's settings: command-line flags, environment and the optional settings ConfigMap.

Sources, highest precedence first: flags (``--namespace``, ``--liveness``, ``--verbose``), the
environment (what the Helm chart sets), the settings ConfigMap named by
``ROLLWISE_SETTINGS_CONFIGMAP`` (read once at start-up, see :func:`apply_configmap`), built-in
defaults. Every value is validated here, so a typo fails the start with a message naming the
variable instead of surfacing later as a strange reconcile error.

Environment:

* ``ROLLWISE_LOG_FORMAT``: ``json`` or ``console``; unset: JSON unless stdout is a terminal.
* ``ROLLWISE_PEERING``: kopf peering name; unset means standalone (one replica).
* ``ROLLWISE_PEERING_PRIORITY``: this replica's kopf peering priority. Replicas of equal
  priority all pause (kopf cannot tell which should act), so replicas that share a peering
  need distinct priorities; the highest live one acts, the others stand by. Unset, it is
  derived from the process's start time (:func:`seniority_priority`): the replicas of one
  Deployment, which cannot be given distinct values, get distinct priorities, and the longest
  running one keeps acting while newer ones (a rolling update, a restart) join as standbys.
* ``ROLLWISE_PEERING_LIFETIME``: seconds a replica's peering record stays valid without a
  keep-alive (default 60): how long a standby waits before it takes over from a dead peer.
* ``ROLLWISE_SETTINGS_CONFIGMAP``: ``NAMESPACE/NAME`` of the settings ConfigMap.
* ``ROLLWISE_METRICS_PORT``: port of the Prometheus endpoint (default 9102, 0 turns it off).
* ``ROLLWISE_PROMETHEUS_URL``: Prometheus queried for metrics whose provider names no address.
* ``POD_NAME`` / ``POD_NAMESPACE``: the operator's own pod (event reporting instance, peering).
* ``KUBECONFIG``: used by the Kubernetes client outside a cluster (in-cluster config first).

The ConfigMap may carry ``prometheusURL`` and ``resyncSeconds``; environment variables win.
No I/O happens here except :func:`apply_configmap`, which the caller hands the ConfigMap's
``data`` it read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import urlparse

DEFAULT_METRICS_PORT = 9102

#: kopf's default lifetime of a peering record, in seconds.
DEFAULT_PEERING_LIFETIME = 60

#: Longest wait between two looks at a Rollout with nothing pending (a safety net for missed
#: watch events; a healthy rollout costs one cheap pass per period).
DEFAULT_RESYNC_SECONDS = 300.0

_DNS_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


class SettingsError(ValueError):
    """A flag, environment variable or ConfigMap key has an unusable value."""


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


@dataclass(frozen=True)
class Settings:
    """Everything the operator process is configured with."""

    namespaces: tuple[str, ...] = ()
    liveness: str | None = None
    verbose: bool = False
    log_format: LogFormat = LogFormat.JSON
    peering: str | None = None
    peering_priority: int = 0
    peering_lifetime: int = DEFAULT_PEERING_LIFETIME
    settings_configmap: tuple[str, str] | None = None
    metrics_port: int = DEFAULT_METRICS_PORT
    prometheus_url: str | None = None
    pod_name: str | None = None
    pod_namespace: str | None = None
    resync_seconds: float = DEFAULT_RESYNC_SECONDS

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def _check_name(value: str, what: str) -> str:
    if not value or len(value) > 253 or not set(value) <= _DNS_LABEL_CHARS | {"."}:
        raise SettingsError(f"{what}: {value!r} is not a valid Kubernetes name")
    return value


def _check_url(value: str, what: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{what}: {value!r} is not an http(s) URL")
    return value.rstrip("/")


def _port(value: str, what: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{what}: {port} is not within 0-65535 (0 turns it off)")
    return port


def _integer(value: str, what: str, minimum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise SettingsError(f"{what}: must be at least {minimum}, got {number}")
    return number


def _positive_seconds(value: str, what: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{what}: {value!r} is not a number of seconds") from None
    if not seconds > 0:
        raise SettingsError(f"{what}: must be greater than 0, got {value}")
    return seconds


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="rollwise-operator",
        description="The Rollwise operator: progressive delivery of Rollouts.",
    )
    parse.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable); none: the whole cluster",
    )
    parse.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parse.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return parse


def seniority_priority(started_at: float) -> int:
    """A peering priority that is higher the earlier the process started (in milliseconds)."""
    return -int(started_at * 1000)


def from_sources(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    isatty: bool | None = None,
    started_at: float | None = None,
) -> Settings:
    """Settings from flags and environment (the ConfigMap comes later, see
    :func:`apply_configmap`). ``started_at`` (epoch seconds, default now) seeds the peering
    priority when none is given. Raises :class:`SettingsError`; argparse exits on bad flags."""
    environ = os.environ if env is None else env
    args = parser().parse_args(list(argv) if argv is not None else None)
    namespaces = tuple(dict.fromkeys(_check_name(ns, "--namespace") for ns in args.namespace))
    liveness = _check_url(args.liveness, "--liveness") if args.liveness else None

    raw_format = environ.get("ROLLWISE_LOG_FORMAT", "").strip().lower()
    if raw_format:
        try:
            log_format = LogFormat(raw_format)
        except ValueError:
            raise SettingsError(
                f"ROLLWISE_LOG_FORMAT: {raw_format!r} is not one of json, console"
            ) from None
    else:
        tty = sys.stdout.isatty() if isatty is None else isatty
        log_format = LogFormat.CONSOLE if tty else LogFormat.JSON

    peering = environ.get("ROLLWISE_PEERING", "").strip() or None
    if peering is not None:
        _check_name(peering, "ROLLWISE_PEERING")
    raw_priority = environ.get("ROLLWISE_PEERING_PRIORITY", "").strip()
    if raw_priority:
        priority = _integer(raw_priority, "ROLLWISE_PEERING_PRIORITY")
    elif peering is not None:
        priority = seniority_priority(time.time() if started_at is None else started_at)
    else:
        priority = 0
    raw_lifetime = environ.get("ROLLWISE_PEERING_LIFETIME", "").strip()
    lifetime = (
        _integer(raw_lifetime, "ROLLWISE_PEERING_LIFETIME", minimum=1)
        if raw_lifetime
        else DEFAULT_PEERING_LIFETIME
    )

    configmap: tuple[str, str] | None = None
    raw_cm = environ.get("ROLLWISE_SETTINGS_CONFIGMAP", "").strip()
    if raw_cm:
        ns, sep, name = raw_cm.partition("/")
        if not sep:
            raise SettingsError(f"ROLLWISE_SETTINGS_CONFIGMAP: {raw_cm!r} is not NAMESPACE/NAME")
        configmap = (
            _check_name(ns, "ROLLWISE_SETTINGS_CONFIGMAP"),
            _check_name(name, "ROLLWISE_SETTINGS_CONFIGMAP"),
        )

    raw_port = environ.get("ROLLWISE_METRICS_PORT", "").strip()
    metrics_port = _port(raw_port, "ROLLWISE_METRICS_PORT") if raw_port else DEFAULT_METRICS_PORT
    raw_url = environ.get("ROLLWISE_PROMETHEUS_URL", "").strip()
    prometheus_url = _check_url(raw_url, "ROLLWISE_PROMETHEUS_URL") if raw_url else None

    return Settings(
        namespaces=namespaces,
        liveness=liveness,
        verbose=bool(args.verbose),
        log_format=log_format,
        peering=peering,
        peering_priority=priority,
        peering_lifetime=lifetime,
        settings_configmap=configmap,
        metrics_port=metrics_port,
        prometheus_url=prometheus_url,
        pod_name=environ.get("POD_NAME") or None,
        pod_namespace=environ.get("POD_NAMESPACE") or None,
    )


def apply_configmap(
    settings: Settings, data: Mapping[str, str], env: Mapping[str, str] | None = None
) -> Settings:
    """``settings`` completed from the settings ConfigMap's ``data`` (environment wins).
    Unknown keys are refused: a misspelt key would otherwise be silently ignored."""
    environ = os.environ if env is None else env
    known = {"prometheusURL", "resyncSeconds"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"settings ConfigMap: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    changes: dict[str, object] = {}
    url = (data.get("prometheusURL") or "").strip()
    if url and not environ.get("ROLLWISE_PROMETHEUS_URL"):
        changes["prometheus_url"] = _check_url(url, "settings ConfigMap prometheusURL")
    resync = (data.get("resyncSeconds") or "").strip()
    if resync:
        changes["resync_seconds"] = _positive_seconds(resync, "settings ConfigMap resyncSeconds")
    return replace(settings, **changes) if changes else settings  # type: ignore[arg-type]


__all__ = [
    "DEFAULT_METRICS_PORT",
    "DEFAULT_PEERING_LIFETIME",
    "DEFAULT_RESYNC_SECONDS",
    "LogFormat",
    "Settings",
    "SettingsError",
    "apply_configmap",
    "from_sources",
    "parser",
    "seniority_priority",
]
