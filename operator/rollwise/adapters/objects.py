"""The operator's own objects through the Kubernetes API: read a Rollout or a ModelRelease,
merge-patch its ``/status`` subresource, post core/v1 Events about it.

:func:`api_client` logs in the way every Kubernetes tool does (in-cluster service account
first, else the kubeconfig ``KUBECONFIG`` names or ``~/.kube/config``). Errors are mapped by
:func:`rollwise.adapters.kube.kube_errors` (:mod:`rollwise.adapters.errors`). Events of a
logged transition are created under their deterministic name
(:func:`rollwise.core.events.event_name`): an AlreadyExists answer means posted before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client, config

from rollwise import GROUP, MODELRELEASES, ROLLOUTS, VERSION
from rollwise.adapters.errors import Conflict, NotFound
from rollwise.adapters.kube import MERGE_PATCH, discard, kube_errors
from rollwise.adapters.releases import MODELRELEASE_API_VERSION, MODELRELEASE_KIND, ReleaseRef
from rollwise.adapters.workloads import ROLLOUT_API_VERSION, ROLLOUT_KIND
from rollwise.core.events import Event, LoggedEvent, event_name
from rollwise.core.status_model import format_time

PLURAL, RELEASE_PLURAL = ROLLOUTS, MODELRELEASES


class ObjectRef(Protocol):
    """What an event needs of the object it is about."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def uid(self) -> str: ...


#: ``source.component`` / ``reportingComponent`` of the operator's events.
COMPONENT = "rollwise-operator"


#: Seconds one API request of a pass may take.
REQUEST_TIMEOUT = 10.0


def api_client(connections: int | None = None) -> Any:
    """A ``kubernetes.client.ApiClient``: in-cluster configuration first, else kubeconfig.
    ``connections`` sizes its connection pool (the client's default is 5 per CPU of the
    machine, which in a pod is the node's CPU count, not the pod's share)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    if connections is not None:
        configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


class KubeCluster:
    """The Rollout and ModelRelease objects, their status and their events, through the
    Kubernetes API."""

    def __init__(self, api: Any, *, instance: str | None = None) -> None:
        self.api = api
        self.instance = instance or COMPONENT
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    def read_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            with kube_errors(f"get rollout {namespace}/{name}"):
                obj = self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT
                )
        except NotFound:
            return None
        return dict(obj) if isinstance(obj, dict) else None

    def _patch_status(
        self,
        plural: str,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        resource_version: str | None,
    ) -> dict[str, Any]:
        """A merge patch of ``status``, conditional on ``resource_version`` when given."""
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        with kube_errors(f"patch {kind} {namespace}/{name} status"):
            obj = self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )
        return dict(obj) if isinstance(obj, dict) else {}

    def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        return self._patch_status(
            PLURAL, "rollout", namespace, name, patch, resource_version=resource_version
        )

    def post_event(self, rollout: ObjectRef, event: Event) -> None:
        self._post_event(
            rollout.namespace, rollout.name, rollout.uid, (ROLLOUT_API_VERSION, ROLLOUT_KIND), event
        )

    def post_logged(self, rollout: ObjectRef, entry: LoggedEvent) -> bool:
        return self._post_logged(
            rollout.namespace, rollout.name, rollout.uid, (ROLLOUT_API_VERSION, ROLLOUT_KIND), entry
        )

    # -- ModelReleases -----------------------------------------------------------------------

    def read_release(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ModelRelease as the API server has it now; None when it is gone."""
        try:
            with kube_errors(f"get modelrelease {namespace}/{name}"):
                obj = self._custom.get_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    RELEASE_PLURAL,
                    name,
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except NotFound:
            return None
        return dict(obj) if isinstance(obj, dict) else None

    def patch_release_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        return self._patch_status(
            RELEASE_PLURAL,
            "modelrelease",
            namespace,
            name,
            patch,
            resource_version=resource_version,
        )

    def post_release_logged(self, release: ReleaseRef, entry: LoggedEvent) -> bool:
        return self._post_logged(
            release.namespace,
            release.name,
            release.uid,
            (MODELRELEASE_API_VERSION, MODELRELEASE_KIND),
            entry,
        )

    def post_release_event(self, release: ReleaseRef, event: Event) -> None:
        self._post_event(
            release.namespace,
            release.name,
            release.uid,
            (MODELRELEASE_API_VERSION, MODELRELEASE_KIND),
            event,
        )

    def _post_logged(
        self, namespace: str, name: str, uid: str, kind: tuple[str, str], entry: LoggedEvent
    ) -> bool:
        """Creates the Event of a logged transition under its deterministic name; False when
        it exists already (posted before: done)."""
        body = self._event_body(
            namespace,
            {"name": event_name(name, uid, entry.seq), "namespace": namespace},
            (name, uid, kind),
            (entry.type, entry.reason, entry.message),
            entry.time,
        )
        try:
            with kube_errors(f"post event {entry.reason} #{entry.seq} on {namespace}/{name}"):
                discard(
                    self._core.create_namespaced_event(
                        namespace,
                        body,  # type: ignore[arg-type]  # the dict goes out as JSON as it is
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
        except Conflict:
            return False
        return True

    def _event_body(
        self,
        namespace: str,
        metadata: dict[str, str],
        regarding: tuple[str, str, tuple[str, str]],
        what: tuple[str, str, str],
        at: datetime,
    ) -> dict[str, Any]:
        name, uid, (api_version, kind_name) = regarding
        event_type, reason, message = what
        stamp = format_time(at.astimezone(UTC).replace(microsecond=0))
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": metadata,
            "involvedObject": {
                "apiVersion": api_version,
                "kind": kind_name,
                "name": name,
                "namespace": namespace,
                "uid": uid,
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "action": reason,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "count": 1,
        }

    def _post_event(
        self, namespace: str, name: str, uid: str, kind: tuple[str, str], event: Event
    ) -> None:
        """Posts an event that is not a logged transition (a failed action, a rejected
        record: reports of this process), under a generated name."""
        body = self._event_body(
            namespace,
            {"generateName": f"{name}.", "namespace": namespace},
            (name, uid, kind),
            (event.type.value, event.reason.name, event.message),
            datetime.now(UTC),
        )
        with kube_errors(f"post event {event.reason.name} on {namespace}/{name}"):
            discard(
                self._core.create_namespaced_event(
                    namespace,
                    body,  # type: ignore[arg-type]  # the dict goes out as JSON as it is
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )


__all__ = ["COMPONENT", "REQUEST_TIMEOUT", "KubeCluster", "ObjectRef", "api_client"]
