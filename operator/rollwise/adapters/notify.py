"""Notification sinks: the host policy, the guarded HTTP sender, the sinks' Secrets, and the
NotificationPolicy objects' API.

A policy's author is a tenant: the URL of a sink is theirs to choose (it lives in a Secret of
their namespace), but the operator sends from its own network position. So every delivery is
checked against the operator's :class:`HostPolicy` (settings ``ROLLWISE_NOTIFY_*``): the
scheme, an optional host allow-list, and denied networks (by default loopback, link-local
including the cloud metadata addresses, and the unspecified addresses). The check runs on the
address the connection *actually reached* (the socket's peer, before a byte is sent), so a name
that resolves to a denied address, now or after a DNS change, is refused. Proxies from the
environment are not used (the peer would be the proxy). Answers are read within a small bound
and redirects are never followed (``adapters.bounded_http``).

Failures raise the ``SinkError`` subclasses of :mod:`rollwise.adapters.errors`. No message
carries a URL (a Slack webhook's URL is its credential) or a Secret's value: only the host.
"""

from __future__ import annotations

import base64
import fnmatch
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from kubernetes import client
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from rollwise import GROUP, NOTIFICATION_POLICIES, VERSION
from rollwise.adapters.bounded_http import (
    AnswerTooLarge,
    AnswerTooSlow,
    BoundedAdapter,
    RedirectRefused,
)
from rollwise.adapters.errors import (
    Forbidden,
    NotFound,
    SinkForbidden,
    SinkRejected,
    SinkSecretError,
    SinkUnavailable,
)
from rollwise.adapters.kube import MERGE_PATCH, discard, kube_errors
from rollwise.core.notification import (
    AUTHORIZATION_KEY,
    SIGNING_KEY,
    SINK_SECRET_LABEL,
    SINK_SECRET_LABEL_VALUE,
    URL_KEY,
)
from rollwise.core.notification_bodies import Outgoing

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Networks no notification is sent to unless the settings allow them again: loopback (the
#: operator's own ports), link-local (169.254.169.254 and fd00:ec2::254 are the cloud metadata
#: services), the unspecified addresses, and Alibaba Cloud's metadata address.
DEFAULT_DENIED_NETWORKS: tuple[str, ...] = (
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "0.0.0.0/8",
    "::/128",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
)
DEFAULT_SCHEMES: tuple[str, ...] = ("https", "http")

#: Largest answer read from a receiver (nothing of it is used but the status).
MAX_ANSWER_BYTES = 64 * 1024


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ``ValueError`` names a bad one."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _plain(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class HostPolicy:
    """Where notifications may go: schemes, host patterns (empty: any host; ``*.example.com``
    matches subdomains; ``host:port`` pins a port), denied networks and the networks allowed
    again despite them."""

    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    hosts: tuple[str, ...] = ()
    denied: tuple[Network, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_DENIED_NETWORKS)
    )
    allowed: tuple[Network, ...] = ()

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of ``url``, or ``SinkForbidden`` (naming no more than the host)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise SinkForbidden("the sink's url is not a valid URL") from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in self.schemes:
            raise SinkForbidden(
                f"scheme {scheme or '(none)'!r} is not allowed for notifications "
                f"(allowed: {', '.join(self.schemes)})"
            )
        if not host:
            raise SinkForbidden("the sink's url names no host")
        if parts.username or parts.password:
            raise SinkForbidden("the sink's url carries credentials; use the authorization key")
        port = port or (443 if scheme == "https" else 80)
        if self.hosts and not any(_host_matches(p, host, port) for p in self.hosts):
            raise SinkForbidden(f"host {host} is not in the operator's notification host list")
        try:
            literal: Address | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(literal, host)
        return scheme, host, port

    def check_address(self, address: Address, host: str) -> None:
        """``SinkForbidden`` when ``address`` (which ``host`` reached) is in a denied network
        and not allowed again."""
        plain = _plain(address)
        if any(plain in net for net in self.allowed if net.version == plain.version):
            return
        if any(plain in net for net in self.denied if net.version == plain.version):
            raise SinkForbidden(
                f"host {host} is at {plain}, in a network the operator never notifies "
                "(notification denied networks)"
            )


def _host_matches(pattern: str, host: str, port: int) -> bool:
    name, sep, wanted_port = pattern.lower().partition(":")
    if sep and wanted_port != str(port):
        return False
    if name.startswith("*."):
        return host.endswith(name[1:]) and host != name[2:]
    return fnmatch.fnmatchcase(host, name) if "*" in name else host == name


class AddressRefused(Exception):  # raised through urllib3, caught by SinkSender
    """The connection reached an address the host policy denies (raised before any byte is
    sent; not an ``OSError``, so urllib3 neither retries nor wraps it)."""


def _guarded_pools(policy: HostPolicy) -> dict[str, type[HTTPConnectionPool]]:
    def check(conn: HTTPConnection, sock: socket.socket) -> socket.socket:
        peer = sock.getpeername()[0]
        try:
            policy.check_address(ipaddress.ip_address(peer.split("%")[0]), conn.host)
        except SinkForbidden as exc:
            sock.close()
            raise AddressRefused(exc.message) from None
        return sock

    class GuardedHTTP(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return check(self, super()._new_conn())

    class GuardedHTTPS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return check(self, super()._new_conn())

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTP

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPS

    return {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}


class _GuardedAdapter(BoundedAdapter):
    def __init__(self, policy: HostPolicy, max_bytes: int) -> None:
        self._pools = _guarded_pools(policy)
        super().__init__(max_bytes, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class SinkSender:
    """POSTs notifications under a :class:`HostPolicy`, thread-safe."""

    def __init__(self, policy: HostPolicy, *, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.policy = policy
        session = requests.Session()
        session.trust_env = False  # no proxies from the environment: the peer is checked
        adapter = _GuardedAdapter(policy, max_bytes)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    def post(self, url: str, outgoing: Outgoing, timeout: float) -> int:
        """Sends ``outgoing``; the receiver's 2xx status. Raises ``SinkUnavailable`` (retry),
        ``SinkRejected``, ``SinkForbidden``."""
        _, host, _ = self.policy.check_url(url)
        try:
            response = self._session.post(
                url,
                data=outgoing.body,
                headers=dict(outgoing.headers),
                timeout=(min(timeout, 5.0), timeout),
                allow_redirects=False,
            )
        except AddressRefused as exc:
            raise SinkForbidden(str(exc)) from None
        except RedirectRefused as exc:
            raise SinkRejected(f"{host} answered with a redirect, which is not followed") from exc
        except (AnswerTooLarge, AnswerTooSlow) as exc:
            raise SinkUnavailable(f"{host}: {exc}") from exc
        except requests.Timeout as exc:
            raise SinkUnavailable(f"{host} did not answer within {timeout:g}s") from exc
        except requests.RequestException as exc:
            raise SinkUnavailable(f"cannot reach {host}: {type(exc).__name__}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return status
        if status in (408, 429) or status >= 500:
            raise SinkUnavailable(
                f"{host} answered {status}", status=status, retry_after=_retry_after(response)
            )
        raise SinkRejected(f"{host} answered {status}", status=status)

    def close(self) -> None:
        self._session.close()


# --------------------------------------------------------------------------------------------
# Secrets


@dataclass(frozen=True)
class SinkCredentials:
    """What a sink's Secret holds. ``repr`` shows none of it."""

    url: str = field(repr=False)
    signing_key: bytes | None = field(default=None, repr=False)
    authorization: str | None = field(default=None, repr=False)


def _decoded(data: dict[str, Any], key: str) -> bytes | None:
    raw = data.get(key)
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).strip() or None
    except ValueError:
        return None


def credentials_of(body: dict[str, Any], namespace: str, name: str) -> SinkCredentials:
    """The credentials of a Secret's body, or ``SinkSecretError``: the Secret must carry the
    label ``rollwise.dev/notification-sink: "true"`` and a ``url``."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    if labels.get(SINK_SECRET_LABEL) != SINK_SECRET_LABEL_VALUE:
        raise SinkSecretError(
            f"Secret {namespace}/{name} is not marked for notifications (label "
            f'{SINK_SECRET_LABEL}: "{SINK_SECRET_LABEL_VALUE}")'
        )
    data = body.get("data") or {}
    url = _decoded(data, URL_KEY)
    if url is None:
        raise SinkSecretError(f"Secret {namespace}/{name} has no key {URL_KEY!r}")
    try:
        text = url.decode()
    except UnicodeDecodeError:
        raise SinkSecretError(f"Secret {namespace}/{name}: {URL_KEY!r} is not text") from None
    authorization = _decoded(data, AUTHORIZATION_KEY)
    try:
        auth_text = authorization.decode() if authorization is not None else None
    except UnicodeDecodeError:
        raise SinkSecretError(
            f"Secret {namespace}/{name}: {AUTHORIZATION_KEY!r} is not text"
        ) from None
    if auth_text is not None and any(c in auth_text for c in "\r\n"):
        raise SinkSecretError(f"Secret {namespace}/{name}: {AUTHORIZATION_KEY!r} spans lines")
    return SinkCredentials(
        url=text, signing_key=_decoded(data, SIGNING_KEY), authorization=auth_text
    )


class SinkSecrets:
    """Reads sinks' Secrets by name (the operator never lists Secrets), each kept ``ttl``
    seconds so that a busy policy costs one read per period; thread-safe."""

    def __init__(self, api_client: Any, *, timeout: float = 10.0, ttl: float = 30.0) -> None:
        self._core: Any = client.CoreV1Api(api_client)
        self.timeout = timeout
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, SinkCredentials | SinkSecretError]] = {}
        self._lock = threading.Lock()

    def read(self, namespace: str, name: str) -> SinkCredentials:
        key = (namespace, name)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            if isinstance(hit[1], SinkSecretError):
                raise hit[1]
            return hit[1]
        try:
            found: SinkCredentials | SinkSecretError = credentials_of(
                self._get(namespace, name), namespace, name
            )
        except SinkSecretError as exc:
            found = exc
        with self._lock:
            self._cache[key] = (now, found)
        if isinstance(found, SinkSecretError):
            raise found
        return found

    def _get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            with kube_errors(f"get secret {namespace}/{name}"):
                response = self._core.read_namespaced_secret(
                    name, namespace, _preload_content=False, _request_timeout=self.timeout
                )
        except NotFound:
            raise SinkSecretError(f"Secret {namespace}/{name} does not exist") from None
        except Forbidden:
            raise SinkSecretError(
                f"the operator may not read Secret {namespace}/{name} "
                "(docs/notifications.md: granting access to sink Secrets)"
            ) from None
        try:
            body = json.loads(response.data or b"{}")
        finally:
            discard(response)
        return body if isinstance(body, dict) else {}


# --------------------------------------------------------------------------------------------
# NotificationPolicy objects

POLICIES = NOTIFICATION_POLICIES


class NotificationPolicies:
    """Lists NotificationPolicies and merge-patches their status."""

    def __init__(self, api_client: Any, *, timeout: float = 10.0) -> None:
        self._custom: Any = client.CustomObjectsApi(api_client)
        self.timeout = timeout

    def list(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        """Every policy of ``namespaces`` (empty: of the cluster); an API without the CRD
        answers NotFound."""
        if not namespaces:
            with kube_errors("list notificationpolicies"):
                listing = self._custom.list_cluster_custom_object(
                    GROUP, VERSION, POLICIES, _request_timeout=self.timeout
                )
            return [dict(i) for i in (listing or {}).get("items") or []]
        found: list[dict[str, Any]] = []
        for namespace in namespaces:
            with kube_errors(f"list notificationpolicies in {namespace}"):
                listing = self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, POLICIES, _request_timeout=self.timeout
                )
            found += [dict(i) for i in (listing or {}).get("items") or []]
        return found

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with kube_errors(f"patch notificationpolicy {namespace}/{name} status"):
            self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                POLICIES,
                name,
                {"status": status},
                _content_type=MERGE_PATCH,
                _request_timeout=self.timeout,
            )


__all__ = [
    "DEFAULT_DENIED_NETWORKS",
    "DEFAULT_SCHEMES",
    "HostPolicy",
    "NotificationPolicies",
    "SinkCredentials",
    "SinkSecrets",
    "SinkSender",
    "credentials_of",
    "parse_networks",
]
