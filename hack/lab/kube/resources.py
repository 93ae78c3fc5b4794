"""What the emulator knows about each kind it serves: names, scope, subresources, defaults,
field-selector labels, server-side table columns, and the built-in kinds themselves.

A :class:`ResourceType` is one served group/version/resource. Several may share one storage
(the versions of a CRD; core/v1 and events.k8s.io/v1 Events, converted field by field).

Boundary: descriptions and pure functions over objects; the store and HTTP live elsewhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

StorageKey = tuple[str, str]  # (group, plural)

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ScaleSpec:
    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=lambda: list(ALL_VERBS))
    status: bool = False
    scale: ScaleSpec | None = None
    generation: bool = False
    storage: StorageKey | None = None
    schema: Any = None  # StructuralSchema of a CRD version
    crd: str | None = None
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    field_labels: frozenset[str] = frozenset()
    return_deleted: bool = False
    default: Callable[[dict[str, Any]], None] | None = None
    validate: (
        Callable[[dict[str, Any], dict[str, Any] | None], list[tuple[str, str, str]]] | None
    ) = None
    to_storage: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    from_storage: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    table: (
        Callable[[], tuple[list[dict[str, Any]], Callable[[dict[str, Any]], list[Any]]]] | None
    ) = None

    def __post_init__(self) -> None:
        if not self.singular:
            self.singular = self.kind.lower()
        if self.storage is None:
            self.storage = (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gv_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def storage_key(self) -> StorageKey:
        assert self.storage is not None
        return self.storage

    def supports_field(self, name: str) -> bool:
        return bool(name in ("metadata.name", "metadata.namespace") or name in self.field_labels)


# --------------------------------------------------------------------------------------------
# Time and JSONPath helpers (also used for printer columns)


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    return f"{h // (24 * 365)}y{(h // 24) % 365}d"


def age(obj: dict[str, Any], path: str = "creationTimestamp") -> str:
    stamp = parse_time((obj.get("metadata") or {}).get(path) or "")
    if stamp is None:
        return "<unknown>"
    return human_duration((dt.datetime.now(dt.UTC) - stamp).total_seconds())


_JSONPATH_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)|\[(?P<index>\d+|\*)\]"""
    r"""|\[\?\(@\.(?P<fkey>[A-Za-z0-9_.]+)\s*==\s*(?P<q>["'])(?P<fval>.*?)(?P=q)\)\]"""
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The values a printer-column JSONPath (``.status.phase``, ``.a[0].b``,
    ``.status.conditions[?(@.type=="Ready")].status``) selects."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    nodes = [obj]
    pos = 0
    while pos < len(path):
        m = _JSONPATH_TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        out: list[Any] = []
        for node in nodes:
            if m.group("field") is not None:
                if isinstance(node, dict) and m.group("field") in node:
                    out.append(node[m.group("field")])
            elif m.group("index") is not None:
                if isinstance(node, list):
                    if m.group("index") == "*":
                        out.extend(node)
                    elif int(m.group("index")) < len(node):
                        out.append(node[int(m.group("index"))])
            elif isinstance(node, list):
                for item in node:
                    if isinstance(item, dict):
                        got = jsonpath(item, "." + m.group("fkey"))
                        if got and str(got[0]) == m.group("fval"):
                            out.append(item)
        nodes = out
    return nodes


def get_path(obj: dict[str, Any], dotted: str) -> Any:
    got = jsonpath(obj, dotted)
    return got[0] if got else None


def set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.strip().lstrip(".").split(".") if p]
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


# --------------------------------------------------------------------------------------------
# Tables (kubectl get asks for server-side Table rendering)

Column = dict[str, Any]


def _col(name: str, typ: str = "string", fmt: str = "", description: str = "") -> Column:
    return {
        "name": name,
        "type": typ,
        "format": fmt,
        "description": description or name,
        "priority": 0,
    }


NAME_COLUMN = _col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE_COLUMN = _col(
    "Age",
    description="CreationTimestamp is a timestamp representing the server "
    "time when this object was created.",
)


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def default_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    return [NAME_COLUMN, AGE_COLUMN], lambda o: [_name(o), age(o)]


def crd_table(columns: list[dict[str, Any]]) -> Callable[[], tuple[list[Column], Any]]:
    def build() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
        defs = [NAME_COLUMN]
        for c in columns:
            defs.append(
                {
                    "name": c["name"],
                    "type": c.get("type", "string"),
                    "format": c.get("format", ""),
                    "description": c.get("description", ""),
                    "priority": c.get("priority", 0),
                }
            )
        if not columns:
            defs.append(AGE_COLUMN)

        def row(obj: dict[str, Any]) -> list[Any]:
            cells: list[Any] = [_name(obj)]
            for c in columns:
                got = jsonpath(obj, c["jsonPath"])
                value = got[0] if got else None
                if value is not None and c.get("type") == "date":
                    stamp = parse_time(str(value))
                    value = (
                        human_duration((dt.datetime.now(dt.UTC) - stamp).total_seconds())
                        if stamp
                        else value
                    )
                cells.append(value)
            if not columns:
                cells.append(age(obj))
            return cells

        return defs, row

    return build


def _deployment_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    def row(o: dict[str, Any]) -> list[Any]:
        st = o.get("status") or {}
        want = (o.get("spec") or {}).get("replicas", 0)
        return [
            _name(o),
            f"{st.get('readyReplicas', 0)}/{want}",
            st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0),
            age(o),
        ]

    cols = [NAME_COLUMN, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer")]
    return [*cols, AGE_COLUMN], row


def _namespace_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    return [NAME_COLUMN, _col("Status"), AGE_COLUMN], lambda o: [
        _name(o),
        (o.get("status") or {}).get("phase", ""),
        age(o),
    ]


def _service_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    def row(o: dict[str, Any]) -> list[Any]:
        spec = o.get("spec") or {}
        ports = ",".join(
            f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []
        )
        return [
            _name(o),
            spec.get("type", "ClusterIP"),
            spec.get("clusterIP", ""),
            "<none>",
            ports or "<none>",
            age(o),
        ]

    cols = [NAME_COLUMN, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)")]
    return [*cols, AGE_COLUMN], row


def _pod_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    def row(o: dict[str, Any]) -> list[Any]:
        st = o.get("status") or {}
        statuses = st.get("containerStatuses") or []
        total = len((o.get("spec") or {}).get("containers") or [])
        ready = sum(1 for c in statuses if c.get("ready"))
        restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
        return [_name(o), f"{ready}/{total}", st.get("phase", "Pending"), restarts, age(o)]

    cols = [NAME_COLUMN, _col("Ready"), _col("Status"), _col("Restarts", "integer")]
    return [*cols, AGE_COLUMN], row


def _event_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    def row(o: dict[str, Any]) -> list[Any]:
        inv = o.get("involvedObject") or {}
        last = parse_time(o.get("lastTimestamp") or o.get("eventTime") or "")
        seen = (
            human_duration((dt.datetime.now(dt.UTC) - last).total_seconds())
            if last
            else "<unknown>"
        )
        return [
            seen,
            o.get("type", ""),
            o.get("reason", ""),
            f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
            o.get("message", ""),
        ]

    cols = [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")]
    return cols, row


def _configmap_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    def row(o: dict[str, Any]) -> list[Any]:
        return [_name(o), len(o.get("data") or {}) + len(o.get("binaryData") or {}), age(o)]

    return [NAME_COLUMN, _col("Data", "integer"), AGE_COLUMN], row


def _secret_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    def row(o: dict[str, Any]) -> list[Any]:
        return [_name(o), o.get("type", ""), len(o.get("data") or {}), age(o)]

    return [NAME_COLUMN, _col("Type"), _col("Data", "integer"), AGE_COLUMN], row


def _lease_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    def row(o: dict[str, Any]) -> list[Any]:
        return [_name(o), (o.get("spec") or {}).get("holderIdentity", ""), age(o)]

    return [NAME_COLUMN, _col("Holder"), AGE_COLUMN], row


def _crd_table() -> tuple[list[Column], Callable[[dict[str, Any]], list[Any]]]:
    return [NAME_COLUMN, _col("Created At", "date")], lambda o: [
        _name(o),
        (o.get("metadata") or {}).get("creationTimestamp", ""),
    ]


# --------------------------------------------------------------------------------------------
# Built-in defaulting and validation (the parts clients notice)


def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    default_pod_spec(template.setdefault("spec", {}))


def _validate_deployment(
    obj: dict[str, Any], old: dict[str, Any] | None
) -> list[tuple[str, str, str]]:
    errors: list[tuple[str, str, str]] = []
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return [("spec.selector", "Required value", "Required value")]
    from hack.lab.kube.selectors import LabelSelector  # noqa: PLC0415 - avoid an import cycle

    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not LabelSelector.from_match(selector).matches({"metadata": {"labels": labels}}):
        errors.append(
            (
                "spec.template.metadata.labels",
                "Invalid value",
                f"Invalid value: {labels}: `selector` does not match template `labels`",
            )
        )
    if not (spec.get("template") or {}).get("spec", {}).get("containers"):
        errors.append(("spec.template.spec.containers", "Required value", "Required value"))
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        errors.append(("spec.selector", "Invalid value", "Invalid value: field is immutable"))
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errors.append(
            (
                "spec.replicas",
                "Invalid value",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    return errors


def _validate_immutable_data(
    obj: dict[str, Any], old: dict[str, Any] | None
) -> list[tuple[str, str, str]]:
    """ConfigMaps and Secrets with ``immutable: true``: their data cannot change and the flag
    cannot be unset (kube-apiserver's ``ValidateConfigMapUpdate``/``ValidateSecretUpdate``);
    metadata may still change."""
    if old is None or old.get("immutable") is not True:
        return []
    message = "Forbidden: field is immutable when `immutable` is set"
    errors: list[tuple[str, str, str]] = []
    if obj.get("immutable") is not True:
        errors.append(("immutable", "Forbidden", message))
    for key in ("data", "binaryData"):
        if (obj.get(key) or {}) != (old.get(key) or {}):
            errors.append((key, "Forbidden", message))
    return errors


def _default_service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def _default_namespace(obj: dict[str, Any]) -> None:
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _default_secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_pod(obj: dict[str, Any]) -> None:
    default_pod_spec(obj.setdefault("spec", {}))
    obj.setdefault("status", {}).setdefault("phase", "Pending")


# --------------------------------------------------------------------------------------------
# Events: core/v1 is the storage form; events.k8s.io/v1 is a field-by-field view of it.

_EVENT_FIELDS = [  # (core/v1, events.k8s.io/v1)
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
]


def event_to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for core, new in _EVENT_FIELDS:
        if new in out:
            out[core] = out.pop(new)
    out["apiVersion"] = "v1"
    return out


def event_from_core(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for core, new in _EVENT_FIELDS:
        if core in out:
            out[new] = out.pop(core)
    out["apiVersion"] = "events.k8s.io/v1"
    return out


def _default_core_event(obj: dict[str, Any]) -> None:
    inv = obj.get("involvedObject")
    if (
        isinstance(inv, dict)
        and "namespace" not in inv
        and obj.get("metadata", {}).get("namespace")
    ):
        inv.setdefault("namespace", obj["metadata"]["namespace"])


_CORE_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
_NEW_EVENT_FIELDS = frozenset(
    {
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reason",
        "reportingController",
        "type",
    }
)


def builtin_types() -> list[ResourceType]:
    rt = ResourceType
    return [
        rt(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            short_names=["ns"],
            status=True,
            verbs=[v for v in ALL_VERBS if v != "deletecollection"],
            default=_default_namespace,
            field_labels=frozenset({"status.phase"}),
            table=_namespace_table,
        ),
        rt(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            True,
            short_names=["cm"],
            table=_configmap_table,
            validate=_validate_immutable_data,
        ),
        rt(
            "",
            "v1",
            "secrets",
            "Secret",
            True,
            default=_default_secret,
            field_labels=frozenset({"type"}),
            table=_secret_table,
            validate=_validate_immutable_data,
        ),
        rt("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=["sa"]),
        rt(
            "",
            "v1",
            "services",
            "Service",
            True,
            short_names=["svc"],
            categories=["all"],
            status=True,
            default=_default_service,
            table=_service_table,
            verbs=[v for v in ALL_VERBS if v != "deletecollection"],
        ),
        rt(
            "",
            "v1",
            "pods",
            "Pod",
            True,
            short_names=["po"],
            categories=["all"],
            status=True,
            default=_default_pod,
            table=_pod_table,
            field_labels=frozenset(
                {
                    "spec.nodeName",
                    "status.phase",
                    "spec.restartPolicy",
                    "spec.schedulerName",
                    "spec.serviceAccountName",
                    "status.podIP",
                    "status.nominatedNodeName",
                }
            ),
        ),
        rt(
            "",
            "v1",
            "events",
            "Event",
            True,
            short_names=["ev"],
            storage=("", "events"),
            field_labels=_CORE_EVENT_FIELDS,
            default=_default_core_event,
            table=_event_table,
        ),
        rt(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            True,
            short_names=["ev"],
            storage=("", "events"),
            field_labels=_NEW_EVENT_FIELDS,
            to_storage=event_to_core,
            from_storage=event_from_core,
        ),
        rt(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            True,
            short_names=["deploy"],
            categories=["all"],
            status=True,
            generation=True,
            scale=ScaleSpec(),
            default=_default_deployment,
            validate=_validate_deployment,
            table=_deployment_table,
        ),
        rt("coordination.k8s.io", "v1", "leases", "Lease", True, table=_lease_table),
        rt(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            short_names=["crd", "crds"],
            categories=["api-extensions"],
            status=True,
            generation=True,
            table=_crd_table,
        ),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            False,
            categories=["api-extensions"],
            generation=True,
        ),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            False,
            categories=["api-extensions"],
            generation=True,
        ),
        rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        rt("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ]


#: Preferred version per group, in the order ``/apis`` lists the built-in groups.
BUILTIN_GROUP_ORDER = [
    "apps",
    "events.k8s.io",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "rbac.authorization.k8s.io",
]
