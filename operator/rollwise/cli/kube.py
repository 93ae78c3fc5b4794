"""The plugin's connection to the API server: configuration, the calls it makes, and every
failure turned into one readable line (:class:`CliError`).

Configuration follows kubectl: ``--kubeconfig``, else ``$KUBECONFIG``, else
``~/.kube/config``; ``--context`` else the current context; the namespace from ``-n``, else
the context's, else ``default``. Without any kubeconfig file, inside a pod
(``KUBERNETES_SERVICE_HOST`` set), the pod's service account is used. The ``kubernetes``
client's own loader reads the files; nothing here parses a kubeconfig.

Only this module (and :mod:`rollwise.cli.watch`, through :meth:`Cluster.watch_object`)
touches the client; it talks to the API server alone, never to the operator.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from rollwise.adapters.errors import AdapterError
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.traffic.base import RouterContext
from rollwise.adapters.traffic.registry import router_for
from rollwise.adapters.workloads import deployment_name
from rollwise.cli.render import ActualWeight
from rollwise.core.spec import TrafficRouting

GROUP = "rollwise.dev"
VERSION = "v1alpha1"
ROLLOUTS = "rollouts"
MODELRELEASES = "modelreleases"

#: The kind of each resource, as events name it, and the word messages use for it.
KINDS = {ROLLOUTS: "Rollout", MODELRELEASES: "ModelRelease"}
KIND_WORDS = {ROLLOUTS: "rollout", MODELRELEASES: "modelrelease"}

#: Seconds one request may take (connect and read) before the server counts as unreachable.
REQUEST_TIMEOUT = 10.0

#: The merge patch content type (RFC 7386); the client would otherwise send a JSON patch.
MERGE_PATCH = "application/merge-patch+json"

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

T = TypeVar("T")


class CliError(Exception):
    """A failure the user reads as one line (``error: ...``) on stderr, exit code 1."""


class Refused(CliError):
    """The API server refused a write; the message is its own (an admission webhook's)."""


class NotServed(CliError):
    """The API server does not serve the resource type (its CRD is not installed)."""


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _crd_missing(plural: str) -> NotServed:
    return NotServed(f"{plural}.{GROUP} is not installed in this cluster (kubectl apply -f crds/)")


def _errno_text(exc: BaseException) -> str:
    """The short cause of a connection failure: ``connection refused``, ``timed out``."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip().lower()
    lowered = text.lower()
    for known in ("timed out", "certificate verify failed", "name or service not known"):
        if known in lowered:
            return known
    reason = getattr(exc, "reason", None)
    if reason is not None and reason is not exc:
        return _errno_text(reason) if isinstance(reason, BaseException) else str(reason)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _server_message(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip():
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip().splitlines()[0][:300]
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return str(exc.reason or "no reason given")


def _not_found_kind(exc: ApiException) -> bool:
    """Whether a 404 names an object (``details.name``) rather than a missing resource type."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return False
    details = parsed.get("details") if isinstance(parsed, dict) else None
    return isinstance(details, dict) and bool(details.get("name"))


@dataclass
class Cluster:
    """An API client, the namespace commands default to, and the server's address."""

    api: Any
    namespace: str
    host: str

    # ---------------------------------------------------------------- error handling

    def call(self, what: Callable[[], T]) -> T:
        """Runs one API call, translating transport failures (API errors are the caller's)."""
        try:
            return what()
        except ApiException as exc:
            if exc.status in (0, None):
                raise self.unreachable(exc) from exc
            raise
        except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: BaseException) -> CliError:
        return CliError(f"cannot reach the API server at {self.host}: {_errno_text(exc)}")

    def api_error(self, exc: ApiException, doing: str) -> CliError:
        message = _server_message(exc)
        if exc.status in (401, 403):
            return CliError(f"{doing}: forbidden: {message}")
        return CliError(f"{doing}: {message} (HTTP {exc.status})")

    def served(self, plural: str) -> bool:
        """Whether the API server serves ``plural.rollwise.dev`` (its CRD is installed)."""
        custom = client.CustomObjectsApi(self.api)
        try:
            resources = self.call(
                lambda: custom.get_api_resources(GROUP, VERSION, _request_timeout=REQUEST_TIMEOUT)
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self.api_error(exc, f"discover {GROUP}/{VERSION}") from exc
        found = getattr(resources, "resources", None) or []
        return any(getattr(r, "name", None) == plural for r in found)

    # ---------------------------------------------------------------- Rollouts, ModelReleases

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """One ``plural`` object (``rollouts`` or ``modelreleases``)."""
        custom = client.CustomObjectsApi(self.api)
        word = KIND_WORDS[plural]
        try:
            obj = self.call(
                lambda: custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                if not _not_found_kind(exc) and not self.served(plural):
                    raise _crd_missing(plural) from exc
                raise CliError(f'{word} "{name}" not found in namespace "{namespace}"') from exc
            raise self.api_error(exc, f'get {word} "{name}"') from exc
        return _as_dict(obj)

    def get_rollout(self, namespace: str, name: str) -> dict[str, Any]:
        return self.get_object(ROLLOUTS, namespace, name)

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every ``plural`` object in ``namespace`` (None: all namespaces)."""
        custom = client.CustomObjectsApi(self.api)

        def fetch() -> Any:
            if namespace is None:
                return custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, _request_timeout=REQUEST_TIMEOUT
                )
            return custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, _request_timeout=REQUEST_TIMEOUT
            )

        try:
            listing = self.call(fetch)
        except ApiException as exc:
            if exc.status == 404:
                raise _crd_missing(plural) from exc
            raise self.api_error(exc, f"list {plural}") from exc
        items = listing.get("items") if isinstance(listing, dict) else None
        return [dict(i) for i in items or [] if isinstance(i, dict)]

    def patch_object(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch on the object (not its status); returns the object as the API
        server stored it, after admission webhooks changed it.

        A ModelRelease request the API server refuses (an admission webhook's denial, whatever
        its code; or a 400, 403, 422) raises :class:`Refused` carrying the server's own
        sentence, which already says what to do."""
        custom = client.CustomObjectsApi(self.api)
        word = KIND_WORDS[plural]
        try:
            obj = self.call(
                lambda: custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    name,
                    patch,
                    _content_type=MERGE_PATCH,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                raise CliError(f'{word} "{name}" not found in namespace "{namespace}"') from exc
            message = _server_message(exc)
            # kopf answers a refusal with code 500 unless its handler says otherwise: the
            # API server's wording, not the code, tells a webhook's refusal.
            if plural == MODELRELEASES and (
                exc.status in (400, 403, 422) or "denied the request" in message
            ):
                raise Refused(message) from exc
            raise self.api_error(exc, f'patch {word} "{name}"') from exc
        return _as_dict(obj)

    def patch_rollout(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on the Rollout (not its status)."""
        return self.patch_object(ROLLOUTS, namespace, name, patch)

    def watch_rollout(
        self, namespace: str, name: str, resource_version: str, stream_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.watch_object(ROLLOUTS, namespace, name, resource_version, stream_seconds)

    def watch_object(
        self, plural: str, namespace: str, name: str, resource_version: str, stream_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` for changes of one ``plural`` object after ``resource_version``,
        for at most ``stream_seconds`` (the server ends the stream; the caller watches again).

        Raises ``ApiException`` 410 when the version is too old to watch from."""
        custom = client.CustomObjectsApi(self.api)
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        events = self.call(
            lambda: stream.stream(  # type: ignore[no-untyped-call]
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=stream_seconds,
                _request_timeout=(REQUEST_TIMEOUT, stream_seconds + REQUEST_TIMEOUT),
            )
        )
        try:
            while True:
                event = self.call(lambda: next(events, None))
                if event is None:
                    return
                obj = event.get("object")
                if isinstance(obj, dict):
                    yield str(event.get("type")), obj
        finally:
            stream.stop()  # type: ignore[no-untyped-call]

    # ---------------------------------------------------------------- around a Rollout

    def rollout_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The core/v1 events about the Rollout ``name``."""
        return self.object_events(ROLLOUTS, namespace, name)

    def object_events(self, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """The core/v1 events about the ``plural`` object ``name``."""
        core = client.CoreV1Api(self.api)
        selector = f"involvedObject.name={name},involvedObject.kind={KINDS[plural]}"
        try:
            response = self.call(
                lambda: core.list_namespaced_event(
                    namespace,
                    field_selector=selector,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            raise self.api_error(exc, f'list events of {KIND_WORDS[plural]} "{name}"') from exc
        raw: Any = response
        body = json.loads(raw.data or b"{}")
        items = body.get("items") if isinstance(body, dict) else None
        return [i for i in items or [] if isinstance(i, dict)]

    def actual_weight(self, rollout: dict[str, Any]) -> ActualWeight | None:
        """The canary weight the Rollout's traffic router reports, read the way the operator
        reads it (the same router adapters); None when there is no canary to weigh."""
        meta = rollout.get("metadata") or {}
        spec = rollout.get("spec") or {}
        status = rollout.get("status") or {}
        canary_spec = (spec.get("strategy") or {}).get("canary") or {}
        stable, canary = status.get("stableRevision"), status.get("canaryRevision")
        if not stable or not canary:
            return None
        try:
            routing = (
                TrafficRouting.model_validate(canary_spec["trafficRouting"])
                if canary_spec.get("trafficRouting")
                else None
            )
        except ValueError:
            return None
        name = str(meta.get("name", ""))
        if routing is not None and routing.gateway_api is not None:
            source = f"HTTPRoute {routing.gateway_api.http_route.name}"
        elif routing is not None and routing.istio is not None:
            source = f"VirtualService {routing.istio.virtual_service.name}"
        else:
            source = "replica ratio"
        context = RouterContext(
            namespace=str(meta.get("namespace", self.namespace)),
            rollout=name,
            stable_service=str(canary_spec.get("stableService", "")),
            canary_service=str(canary_spec.get("canaryService", "")),
            replicas=int(spec.get("replicas", 1)),
            stable_deployment=deployment_name(name, str(stable)),
            canary_deployment=deployment_name(name, str(canary)),
        )
        try:
            router = router_for(routing, context, KubeAPI(self.api, timeout=REQUEST_TIMEOUT))
            weight = router.get_weight()
        except AdapterError as exc:
            return ActualWeight(None, source, exc.message.splitlines()[0][:200])
        return ActualWeight(weight, source, "" if weight is not None else "routes disagree")


def _kubeconfig_exists(path: str | None) -> bool:
    if path:
        return True
    env = os.environ.get("KUBECONFIG")
    if env:
        return any(Path(p).expanduser().exists() for p in env.split(os.pathsep) if p)
    return Path("~/.kube/config").expanduser().exists()


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    """The cluster of ``--kubeconfig`` / ``--context`` (or in-cluster) and the namespace that
    commands default to."""
    configuration = client.Configuration()
    in_cluster = not _kubeconfig_exists(kubeconfig) and bool(
        os.environ.get("KUBERNETES_SERVICE_HOST")
    )
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            default_ns = _service_account_namespace()
        else:
            if kubeconfig and not Path(kubeconfig).expanduser().exists():
                raise CliError(f"kubeconfig {kubeconfig} does not exist")
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            default_ns = _context_namespace(kubeconfig, context)
    except ConfigException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid configuration"
        raise CliError(f"cannot load the Kubernetes configuration: {first}") from exc
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CliError(f"cannot load the Kubernetes configuration: {exc}") from exc
    # One attempt per request: a server that refuses connections is reported at once instead
    # of after the client's silent retries.
    configuration.retries = 0
    api = client.ApiClient(configuration)
    return Cluster(api=api, namespace=namespace or default_ns, host=str(configuration.host))


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    chosen = active
    if context:
        chosen = next((c for c in contexts or [] if c.get("name") == context), active)
    details = (chosen or {}).get("context") or {}
    return str(details.get("namespace") or "default")


def _service_account_namespace() -> str:
    try:
        return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


__all__ = [
    "GROUP",
    "KINDS",
    "KIND_WORDS",
    "MODELRELEASES",
    "ROLLOUTS",
    "VERSION",
    "CliError",
    "Cluster",
    "NotServed",
    "Refused",
    "connect",
]
