"""API semantics of every write, as kube-apiserver's generic registry applies them.

Create, update, patch and delete run the same pipeline: decode and check the request, merge
it with the stored object, keep what the client may not change (status on the main
resource, everything but status on ``/status``, uid, creationTimestamp...), default,
mutating admission, schema validation (custom resources, via ``hack.lab.kube.schema``),
validating admission, then commit with a resourceVersion precondition (retried for patches
and unconditional updates, a 409 Conflict when the client sent a stale resourceVersion).
A write that changes nothing is answered with the stored object, without a new
resourceVersion or watch event. ``generation`` moves when anything but metadata and status
changes. Deletion honours finalizers and propagation policies; a garbage collector deletes
dependents whose owners are gone; CRDs become served resources through a small controller.

Boundary: Python values in and out, :class:`~hack.lab.kube.errors.APIError` on failure. HTTP
parsing and rendering are the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

from hack.lab.kube import patching, typed
from hack.lab.kube.contracts import (
    ANONYMOUS_ADMIN,
    Admission,
    AdmissionAttributes,
    AdmissionDenied,
    NoAdmission,
    UserInfo,
)
from hack.lab.kube.errors import (
    APIError,
    bad_request,
    conflict,
    invalid,
    method_not_allowed,
    not_found,
)
from hack.lab.kube.patching import PatchError, copy_json
from hack.lab.kube.resources import (
    ResourceType,
    ScaleSpec,
    crd_table,
    get_path,
    now_rfc3339,
    set_path,
)
from hack.lab.kube.store import Change, StaleError, Store, TooOld

try:
    from hack.lab.kube import schema as _schema
except ImportError:  # pragma: no cover - the schema module is optional while it is written
    _schema = None  # type: ignore[assignment]
try:
    from hack.lab.kube.admission import ADMISSION_WARNINGS
except ImportError:  # pragma: no cover - webhook admission is optional
    ADMISSION_WARNINGS = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

GC_USER = UserInfo(
    username="system:serviceaccount:kube-system:generic-garbage-collector",
    groups=("system:serviceaccounts", "system:authenticated"),
)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAMES = {"namespaces", "services"}
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
_STATUS_KEEP_META = ("labels", "annotations", "finalizers", "ownerReferences", "generation")

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


class Registry:
    def __init__(self, store: Store, admission: Admission | None = None) -> None:
        self.store = store
        self.admission: Admission = admission or NoAdmission()
        self._ip_counter = 10
        self._gc_wakeup = asyncio.Event()
        self._gc_task: asyncio.Task[None] | None = None
        # uids of the objects the collector may act on: those with ownerReferences or a
        # deletionTimestamp (kept current by _on_change), so that a pass reads those, not
        # every stored object (Events included).
        self._gc_candidates: set[str] = set()
        store.listeners.append(self._on_change)

    # ---------------------------------------------------------------------------- helpers

    def _attrs(
        self,
        rt: ResourceType,
        op: str,
        namespace: str | None,
        name: str,
        user: UserInfo,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> AdmissionAttributes:
        return AdmissionAttributes(
            operation=op,
            group=rt.group,
            version=rt.version,
            resource=rt.plural,
            subresource=subresource,
            kind=rt.kind,
            namespace=namespace if rt.namespaced else None,
            name=name,
            user=user,
            dry_run=dry_run,
        )

    async def _admit(
        self,
        attrs: AdmissionAttributes,
        rt: ResourceType,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        field_validation: str,
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """Mutating admission, defaults and schema validation, validating admission."""
        collected: list[str] = []
        token = ADMISSION_WARNINGS.set(collected) if ADMISSION_WARNINGS is not None else None
        try:
            mutated = await self.admission.mutate(attrs, obj, old)
            if mutated is not None:
                obj = mutated
            warnings: list[str] = []
            if obj is not None:
                obj, warnings = self._validate(rt, obj, old, field_validation, attrs.name)
            await self.admission.validate(attrs, obj, old)
        except AdmissionDenied as denied:
            raise APIError(denied.code, denied.reason, denied.message) from None
        finally:
            if token is not None and ADMISSION_WARNINGS is not None:
                ADMISSION_WARNINGS.reset(token)
        return obj, collected + warnings

    def _validate(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        field_validation: str,
        name: str,
    ) -> tuple[dict[str, Any], list[str]]:
        warnings: list[str] = []
        meta_errors = _validate_metadata(obj.get("metadata") or {})
        if meta_errors:
            raise invalid(rt.kind, rt.group, name, meta_errors)
        if rt.crd is None:
            model = typed.model_name(rt.group, rt.version, rt.kind)
            if typed.known(model) and field_validation != "Ignore":
                # Refused under Strict and warned about otherwise, but kept: the client's
                # models may be older than the API a test means to emulate (a real server
                # drops fields its types do not have).
                unknown: list[str] = []
                typed.unknown_fields(obj, model, unknown)
                self._report_unknown(rt, unknown, field_validation, warnings)
        if rt.schema is not None:
            admitted, errors = _schema.admit_custom_resource(rt.schema, obj, old)
            self._report_unknown(rt, _unknown_fields(obj, admitted), field_validation, warnings)
            if errors:
                raise invalid(rt.kind, rt.group, name, errors)
            obj = admitted
        if rt.validate is not None:
            errs = rt.validate(obj, old)
            if errs:
                raise invalid(rt.kind, rt.group, name, errs)
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._crd_types(obj)
        return obj, warnings

    @staticmethod
    def _report_unknown(
        rt: ResourceType, unknown: list[str], field_validation: str, warnings: list[str]
    ) -> None:
        """Unknown fields: a 400 with ``fieldValidation=Strict``, warnings unless ``Ignore``."""
        if unknown and field_validation == "Strict":
            fields = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {fields}"
            )
        if unknown and field_validation != "Ignore":
            warnings.extend(f'unknown field "{u}"' for u in unknown)

    def _check_body(
        self, rt: ResourceType, body: Any, namespace: str | None, name: str | None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not a JSON object")
        api_version = body.get("apiVersion")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        kind = body.get("kind")
        if kind and kind != rt.kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj: dict[str, Any] = copy_json(body)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = _meta(obj)
        if rt.namespaced:
            given = meta.get("namespace")
            if given and namespace and given != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace or given or "default"
        else:
            meta.pop("namespace", None)
        if name is not None:
            if meta.get("name") and meta["name"] != name:
                raise bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the "
                    f"URL ({name})"
                )
            meta["name"] = name
        return obj

    def _check_name(self, rt: ResourceType, name: str) -> None:
        pattern, limit = (_DNS_LABEL, 63) if rt.plural in _LABEL_NAMES else (_DNS_SUBDOMAIN, 253)
        if not pattern.match(name) or len(name) > limit:
            what = "RFC 1123 label" if limit == 63 else "RFC 1123 subdomain"
            raise invalid(
                rt.kind,
                rt.group,
                name,
                [
                    (
                        "metadata.name",
                        "Invalid value",
                        f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
                        "alphanumeric characters, '-' or '.', and must start and end with an "
                        "alphanumeric character",
                    )
                ],
            )

    def _namespace_ok(self, rt: ResourceType, namespace: str, *, creating: bool) -> None:
        if not rt.namespaced:
            return
        ns_type = self.store.lookup("", "v1", "namespaces")
        assert ns_type is not None
        ns = self.store.stored(ns_type, "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise APIError(
                403,
                "Forbidden",
                f'{rt.plural} "{namespace}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
            )

    def _served_for_create(self, rt: ResourceType) -> None:
        if rt.crd is None:
            return
        crd_type = self.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_type is not None
        crd = self.store.stored(crd_type, "", rt.crd)
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise method_not_allowed(
                "create not allowed while custom resource definition is terminating"
            )

    def _apply_builtin_defaults(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.default is not None:
            rt.default(obj)
        if rt.kind == "Service" and rt.group == "":
            spec = obj.setdefault("spec", {})
            if spec.get("type", "ClusterIP") != "ExternalName" and not spec.get("clusterIP"):
                self._ip_counter += 1
                ip = f"10.96.{self._ip_counter // 250}.{self._ip_counter % 250 + 1}"
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]

    # ---------------------------------------------------------------------------- create

    async def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        user: UserInfo = ANONYMOUS_ADMIN,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[dict[str, Any], list[str]]:
        if "create" not in rt.verbs:
            raise method_not_allowed()
        obj = self._check_body(rt, body, namespace, None)
        meta = _meta(obj)
        ns = meta.get("namespace", "")
        self._served_for_create(rt)
        self._namespace_ok(rt, ns, creating=True)
        if not meta.get("name") and not meta.get("generateName"):
            raise invalid(
                rt.kind,
                rt.group,
                "",
                [
                    (
                        "metadata.name",
                        "Required value",
                        "Required value: name or generateName is required",
                    )
                ],
            )
        for key in (*_SERVER_META, "resourceVersion", "selfLink", "managedFields"):
            meta.pop(key, None)
        if rt.status and (rt.crd is not None or rt.kind in ("Deployment", "Service")):
            obj.pop("status", None)
        for attempt in range(8):
            candidate = copy_json(obj)
            cmeta = _meta(candidate)
            if not cmeta.get("name"):
                suffix = "".join(random.choice(_NAME_CHARS) for _ in range(5))
                cmeta["name"] = f"{cmeta['generateName']}{suffix}"
            self._check_name(rt, cmeta["name"])
            self._apply_builtin_defaults(rt, candidate)
            attrs = self._attrs(rt, "CREATE", ns, cmeta["name"], user, dry_run=dry_run)
            admitted, warnings = await self._admit(attrs, rt, candidate, None, field_validation)
            assert admitted is not None
            ameta = _meta(admitted)
            ameta["uid"] = str(uuid.uuid4())
            ameta["creationTimestamp"] = now_rfc3339()
            if rt.generation:
                ameta["generation"] = 1
            else:
                ameta.pop("generation", None)
            if dry_run:
                if self.store.stored(rt, ameta.get("namespace", ""), ameta["name"]) is not None:
                    raise APIError(
                        409,
                        "AlreadyExists",
                        f'{rt.plural} "{ameta["name"]}" already exists',
                    )
                return admitted, warnings
            try:
                stored = self.store.insert(rt, self.store.to_storage(rt, admitted))
            except APIError as err:
                if err.reason == "AlreadyExists" and not meta.get("name") and attempt < 7:
                    continue
                raise
            created = self.store.view(rt, stored)
            self._after_write(rt, created)
            return created, warnings
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------------------- update

    async def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        user: UserInfo = ANONYMOUS_ADMIN,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[dict[str, Any], list[str]]:
        requested = self._check_body(rt, body, namespace, name)
        explicit_rv = _meta(requested).get("resourceVersion")
        if not explicit_rv and rt.crd is not None:
            # Custom resources do not allow unconditional updates.
            raise invalid(
                rt.kind,
                rt.group,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "Invalid value",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        return await self._write(
            rt,
            namespace,
            name,
            lambda _old: copy_json(requested),
            subresource=subresource,
            user=user,
            dry_run=dry_run,
            field_validation=field_validation,
            explicit_rv=bool(explicit_rv),
        )

    async def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str = "",
        user: UserInfo = ANONYMOUS_ADMIN,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[dict[str, Any], list[str]]:
        if content_type == STRATEGIC and rt.crd is not None:
            content_type = MERGE  # custom resources have no patch strategies: merge semantics
        if content_type == MERGE:
            if not isinstance(patch, dict):
                raise bad_request("a merge patch must be a JSON object")

            def apply(old: dict[str, Any]) -> dict[str, Any]:
                return patching.merge_patch(old, patch)  # type: ignore[no-any-return]
        elif content_type == JSON_PATCH:

            def apply(old: dict[str, Any]) -> dict[str, Any]:
                return patching.json_patch(old, patch)  # type: ignore[no-any-return]
        elif content_type == STRATEGIC:

            def apply(old: dict[str, Any]) -> dict[str, Any]:
                return patching.strategic_merge_patch(old, patch)
        else:
            raise APIError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {JSON_PATCH}, {MERGE}, {STRATEGIC}",
            )
        explicit = isinstance(patch, dict) and bool(
            (patch.get("metadata") or {}).get("resourceVersion")
        )

        def compute(old: dict[str, Any]) -> dict[str, Any]:
            try:
                new = apply(old)
            except PatchError as err:
                if err.unprocessable:
                    raise APIError(422, "Invalid", str(err)) from None
                raise bad_request(str(err)) from None
            if not isinstance(new, dict):
                raise bad_request("the patch did not produce an object")
            return self._check_body(rt, new, namespace, name)

        return await self._write(
            rt,
            namespace,
            name,
            compute,
            subresource=subresource,
            user=user,
            dry_run=dry_run,
            field_validation=field_validation,
            explicit_rv=explicit,
        )

    def _prepare_update(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        if subresource == "status":
            if rt.crd is not None:
                result = new
                if "spec" in old:
                    result["spec"] = copy_json(old["spec"])
                else:
                    result.pop("spec", None)
                meta = _meta(result)
                for key in _STATUS_KEEP_META:
                    if key in old["metadata"]:
                        meta[key] = copy_json(old["metadata"][key])
                    else:
                        meta.pop(key, None)
            else:
                result = copy_json(old)
                if "status" in new:
                    result["status"] = new["status"]
                else:
                    result.pop("status", None)
                _meta(result)["resourceVersion"] = _meta(new).get("resourceVersion")
        else:
            result = new
            if rt.kind == "Service" and rt.group == "":
                # clusterIP is allocated once; an update that leaves it out keeps it.
                spec, old_spec = result.setdefault("spec", {}), old.get("spec") or {}
                for key in ("clusterIP", "clusterIPs"):
                    if not spec.get(key) and key in old_spec:
                        spec[key] = copy_json(old_spec[key])
            if rt.status:
                if "status" in old:
                    result["status"] = copy_json(old["status"])
                else:
                    result.pop("status", None)
        meta, old_meta = _meta(result), old["metadata"]
        for key in _SERVER_META:
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta.pop("selfLink", None)
        if rt.generation:
            meta["generation"] = old_meta.get("generation", 1)
        else:
            meta.pop("generation", None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise invalid(
                    rt.kind,
                    rt.group,
                    meta.get("name", ""),
                    [
                        (
                            "metadata.finalizers",
                            "Forbidden",
                            "Forbidden: no new finalizers can be added if the object is being "
                            f"deleted, found new finalizers {sorted(added)}",
                        )
                    ],
                )
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)
        return result

    async def _write(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        compute: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        subresource: str,
        user: UserInfo,
        dry_run: bool,
        field_validation: str,
        explicit_rv: bool,
    ) -> tuple[dict[str, Any], list[str]]:
        if subresource not in ("", "status", "scale") or (
            subresource == "status" and not rt.status
        ):
            raise not_found(rt.plural, rt.group, name)
        ns = namespace or "" if rt.namespaced else ""
        for _attempt in range(20):
            old = self.store.get(rt, ns, name)
            if old is None:
                raise not_found(rt.plural, rt.group, name)
            old_rv = old["metadata"]["resourceVersion"]
            # ``old`` is this request's own copy (``store.get``); ``compute`` must not modify
            # it (the patch functions never do; the scale path copies first).
            new = compute(old)
            sent_rv = _meta(new).get("resourceVersion")
            if explicit_rv and sent_rv and sent_rv != old_rv:
                raise conflict(rt.plural, rt.group, name)
            new = self._prepare_update(rt, old, new, "" if subresource == "scale" else subresource)
            if subresource != "status":
                self._apply_builtin_defaults(rt, new)
            attrs = self._attrs(
                rt, "UPDATE", ns, name, user, subresource=subresource, dry_run=dry_run
            )
            admitted, warnings = await self._admit(attrs, rt, new, old, field_validation)
            assert admitted is not None
            new = admitted
            # Without a status subresource, status is part of the desired state (CRs).
            ignored = ("metadata", "status") if rt.status else ("metadata",)
            if rt.generation and _without(new, *ignored) != _without(old, *ignored):
                _meta(new)["generation"] = int(old["metadata"].get("generation", 1)) + 1
            _meta(new)["resourceVersion"] = old_rv
            if _comparable(new) == _comparable(old):
                return old, warnings
            if dry_run:
                return new, warnings
            try:
                stored = self.store.replace(rt, self.store.to_storage(rt, new), old_rv)
            except StaleError:
                if explicit_rv:
                    raise conflict(rt.plural, rt.group, name) from None
                continue
            result = self.store.view(rt, stored)
            meta = result["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                if rt.kind == "Namespace" and (result.get("spec") or {}).get("finalizers"):
                    self._wake_gc()
                    return result, warnings
                with contextlib.suppress(StaleError, APIError):
                    final = self.store.remove(rt, ns, name, meta["resourceVersion"])
                    self._after_delete(rt, final)
                    return self.store.view(rt, final), warnings
            self._after_write(rt, result)
            return result, warnings
        raise conflict(rt.plural, rt.group, name)

    # ---------------------------------------------------------------------------- scale

    def _scale_spec(self, rt: ResourceType, name: str) -> ScaleSpec:
        if rt.scale is None:
            raise not_found(rt.plural, rt.group, name)
        return rt.scale

    def scale_of(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        spec = self._scale_spec(rt, obj["metadata"]["name"])
        meta = obj["metadata"]
        status: dict[str, Any] = {"replicas": get_path(obj, spec.status_replicas_path) or 0}
        if rt.kind == "Deployment" and rt.crd is None:
            selector = (obj.get("spec") or {}).get("selector")
            if selector:
                status["selector"] = ",".join(
                    f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()
                )
        elif spec.label_selector_path:
            selector = get_path(obj, spec.label_selector_path)
            if selector:
                status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": get_path(obj, spec.spec_replicas_path) or 0},
            "status": status,
        }

    async def get_scale(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt, namespace if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return self.scale_of(rt, obj)

    async def write_scale(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        scale_fn: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        user: UserInfo,
        dry_run: bool,
    ) -> dict[str, Any]:
        spec = self._scale_spec(rt, name)
        explicit = False

        def compute(old: dict[str, Any]) -> dict[str, Any]:
            nonlocal explicit
            scale = scale_fn(self.scale_of(rt, old))
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    [
                        (
                            "spec.replicas",
                            "Invalid value",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                        )
                    ],
                )
            sent = (scale.get("metadata") or {}).get("resourceVersion")
            if sent and sent != old["metadata"]["resourceVersion"]:
                explicit = True
                raise conflict(rt.plural, rt.group, name)
            updated: dict[str, Any] = copy_json(old)
            set_path(updated, spec.spec_replicas_path, replicas)
            return updated

        result, _ = await self._write(
            rt,
            namespace,
            name,
            compute,
            subresource="scale",
            user=user,
            dry_run=dry_run,
            field_validation="Ignore",
            explicit_rv=explicit,
        )
        return self.scale_of(rt, result)

    # ---------------------------------------------------------------------------- delete

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: UserInfo = ANONYMOUS_ADMIN,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Returns (the object, deleted now)."""
        options = options or {}
        ns = namespace or "" if rt.namespaced else ""
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is True:
            policy = "Orphan"
        if policy not in (None, "Background", "Foreground", "Orphan"):
            raise invalid(
                "DeleteOptions",
                "",
                "",
                [("propagationPolicy", "Unsupported value", f'Unsupported value: "{policy}"')],
            )
        preconditions = options.get("preconditions") or {}
        for _attempt in range(20):
            old = self.store.get(rt, ns, name)
            if old is None:
                raise not_found(rt.plural, rt.group, name)
            meta = old["metadata"]
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if (
                preconditions.get("resourceVersion")
                and preconditions["resourceVersion"] != meta["resourceVersion"]
            ):
                raise conflict(
                    rt.plural,
                    rt.group,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta['resourceVersion']}",
                )
            attrs = self._attrs(rt, "DELETE", ns, name, user, dry_run=dry_run)
            await self._admit(attrs, rt, None, old, "Ignore")
            if dry_run:
                return old, False
            if policy == "Orphan":
                self._orphan_dependents(meta.get("uid", ""))
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            pending_ns = rt.kind == "Namespace" and rt.group == ""
            pending_crd = rt.kind == "CustomResourceDefinition"
            if finalizers or pending_ns or pending_crd:
                if meta.get("deletionTimestamp") and finalizers == list(
                    meta.get("finalizers") or []
                ):
                    return old, False
                new = copy_json(old)
                nmeta = new["metadata"]
                if not nmeta.get("deletionTimestamp"):
                    nmeta["deletionTimestamp"] = now_rfc3339()
                    nmeta["deletionGracePeriodSeconds"] = 0
                    if rt.generation:
                        nmeta["generation"] = int(nmeta.get("generation", 1)) + 1
                if finalizers:
                    nmeta["finalizers"] = finalizers
                if pending_ns:
                    new.setdefault("status", {})["phase"] = "Terminating"
                if pending_crd:
                    _set_condition(
                        new,
                        "Terminating",
                        "True",
                        "InstanceDeletionInProgress",
                        "CustomResource deletion is in progress",
                    )
                try:
                    stored = self.store.replace(
                        rt, self.store.to_storage(rt, new), meta["resourceVersion"]
                    )
                except StaleError:
                    continue
                self._wake_gc()
                return self.store.view(rt, stored), False
            try:
                final = self.store.remove(rt, ns, name, meta["resourceVersion"])
            except StaleError:
                continue
            self._after_delete(rt, final)
            return self.store.view(rt, final), True
        raise conflict(rt.plural, rt.group, name)

    # ---------------------------------------------------------------------------- side effects

    def _on_change(self, storage: tuple[str, str], change: Change) -> None:
        meta = change.obj["metadata"]
        if change.type != "DELETED" and (
            meta.get("ownerReferences") or meta.get("deletionTimestamp")
        ):
            self._gc_candidates.add(meta.get("uid", ""))
        else:
            self._gc_candidates.discard(meta.get("uid", ""))
        if change.type == "DELETED" or (
            change.type == "ADDED" and change.obj["metadata"].get("ownerReferences")
        ):
            self._wake_gc()

    def _wake_gc(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._gc_wakeup.set()

    def _after_write(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        is_crd = rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io"
        if is_crd and not obj["metadata"].get("deletionTimestamp"):
            self._establish(obj)

    def _after_delete(self, rt: ResourceType, final: dict[str, Any]) -> None:
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self.store.unregister_crd(final["metadata"]["name"], drop_storage=True)

    def _orphan_dependents(self, uid: str) -> None:
        for rt, obj in self._gc_objects():
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                new = copy_json(obj)
                kept = [r for r in refs if r.get("uid") != uid]
                if kept:
                    new["metadata"]["ownerReferences"] = kept
                else:
                    del new["metadata"]["ownerReferences"]
                with contextlib.suppress(StaleError, APIError):
                    self.store.replace(rt, new, obj["metadata"]["resourceVersion"])

    def _storage_types(self) -> dict[tuple[str, str], ResourceType]:
        """A type serving each storage (the one that stores objects as they are)."""
        seen: dict[tuple[str, str], ResourceType] = {}
        for rt in self.store.served():
            if rt.storage_key not in seen and rt.to_storage is None:
                seen[rt.storage_key] = rt
        return seen

    def _all_objects(self) -> list[tuple[ResourceType, dict[str, Any]]]:
        """(a type serving the storage, stored object) for every object."""
        out: list[tuple[ResourceType, dict[str, Any]]] = []
        with self.store.lock:
            for storage, rt in self._storage_types().items():
                out.extend((rt, o) for o in self.store.iter_stored(storage))
        return out

    def _gc_objects(self) -> list[tuple[ResourceType, dict[str, Any]]]:
        """(type, stored object) for every object with ownerReferences or a
        deletionTimestamp: all the collector can act on."""
        types = self._storage_types()
        out: list[tuple[ResourceType, dict[str, Any]]] = []
        with self.store.lock:
            for uid in list(self._gc_candidates):
                where = self.store.locate_uid(uid)
                bucket = self.store.buckets.get(where[0]) if where is not None else None
                obj = bucket.objects.get(where[1]) if bucket is not None and where else None
                rt = types.get(where[0]) if where is not None else None
                if obj is None or rt is None:
                    # Gone without a DELETED change (its CRD's storage was dropped).
                    self._gc_candidates.discard(uid)
                    continue
                out.append((rt, obj))
        return out

    # ---------------------------------------------------------------------------- CRDs

    def _crd_types(self, crd: dict[str, Any]) -> list[ResourceType]:
        """The resource types a CRD serves; raises 422 Invalid when it is not acceptable."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
        name = (crd.get("metadata") or {}).get("name", "")
        errors: list[tuple[str, str, str]] = []
        if not group:
            errors.append(("spec.group", "Required value", "Required value"))
        if not plural:
            errors.append(("spec.names.plural", "Required value", "Required value"))
        if not kind:
            errors.append(("spec.names.kind", "Required value", "Required value"))
        if plural and group and name != f"{plural}.{group}":
            errors.append(
                (
                    "metadata.name",
                    "Invalid value",
                    f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                )
            )
        scope = spec.get("scope")
        if scope not in ("Namespaced", "Cluster"):
            errors.append(
                (
                    "spec.scope",
                    "Unsupported value",
                    f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"',
                )
            )
        versions = spec.get("versions") or []
        if not versions:
            errors.append(
                (
                    "spec.versions",
                    "Invalid value",
                    "Invalid value: must have exactly one version marked as storage version",
                )
            )
        if versions and sum(1 for v in versions if v.get("storage")) != 1:
            errors.append(
                (
                    "spec.versions",
                    "Invalid value",
                    "Invalid value: must have exactly one version marked as storage version",
                )
            )
        types: list[ResourceType] = []
        for i, version in enumerate(versions):
            if not version.get("served", True) and not version.get("storage"):
                continue
            raw_schema = (version.get("schema") or {}).get("openAPIV3Schema")
            compiled = None
            if raw_schema is not None and _schema is not None:
                try:
                    compiled = _schema.StructuralSchema(raw_schema)
                except Exception as err:
                    errors.append(
                        (
                            f"spec.versions[{i}].schema.openAPIV3Schema",
                            "Invalid value",
                            f"Invalid value: {err}",
                        )
                    )
            subresources = version.get("subresources") or {}
            selectable = frozenset(
                str(f.get("jsonPath", "")).lstrip(".")
                for f in version.get("selectableFields") or []
            )
            scale = subresources.get("scale")
            if version.get("served", True):
                types.append(
                    ResourceType(
                        group,
                        version.get("name", ""),
                        plural,
                        kind,
                        scope == "Namespaced",
                        singular=names.get("singular") or kind.lower(),
                        short_names=list(names.get("shortNames") or []),
                        categories=list(names.get("categories") or []),
                        status="status" in subresources,
                        scale=ScaleSpec(
                            scale.get("specReplicasPath", ".spec.replicas"),
                            scale.get("statusReplicasPath", ".status.replicas"),
                            scale.get("labelSelectorPath"),
                        )
                        if isinstance(scale, dict)
                        else None,
                        generation=True,
                        schema=compiled,
                        crd=name,
                        field_labels=selectable,
                        printer_columns=list(version.get("additionalPrinterColumns") or []),
                        return_deleted=True,
                        table=crd_table(list(version.get("additionalPrinterColumns") or [])),
                    )
                )
        if errors:
            raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, errors)
        return types

    def _establish(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        types = self._crd_types(crd)
        self.store.unregister_crd(name, drop_storage=False)
        for rt in types:
            self.store.register(rt)
        spec = crd["spec"]
        names = dict(spec["names"])
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", f"{names['kind']}List")
        new = copy_json(crd)
        new["apiVersion"] = "apiextensions.k8s.io/v1"
        status = new.setdefault("status", {})
        status["acceptedNames"] = names
        storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
        stored_versions = list(status.get("storedVersions") or [])
        if storage not in stored_versions:
            stored_versions.append(storage)
        status["storedVersions"] = stored_versions
        _set_condition(new, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
        _set_condition(
            new,
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        )
        if _comparable(new) != _comparable(crd):
            crd_type = self.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            assert crd_type is not None
            with contextlib.suppress(StaleError, APIError):
                self.store.replace(crd_type, new, crd["metadata"]["resourceVersion"])

    def install_crd(self, crd: dict[str, Any]) -> None:
        """Creates (or keeps) a CRD at start-up, without admission."""
        crd_type = self.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_type is not None
        obj = self._check_body(crd_type, crd, None, None)
        self._crd_types(obj)
        meta = obj["metadata"]
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        obj.pop("status", None)
        stored = self.store.insert(crd_type, obj)
        self._establish(self.store.view(crd_type, stored))

    # ---------------------------------------------------------------------------- GC

    def start_gc(self, interval: float = 0.2) -> None:
        self._gc_wakeup = asyncio.Event()
        self._gc_task = asyncio.get_running_loop().create_task(self._gc_loop(interval))

    async def stop_gc(self) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
            self._gc_task = None

    async def _gc_loop(self, interval: float) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._gc_wakeup.wait(), timeout=5.0)
            self._gc_wakeup.clear()
            try:
                again = await self.collect_garbage()
            except Exception:  # the collector must outlive a bad object
                log.exception("garbage collection pass failed")
                again = True
            await asyncio.sleep(interval)
            if again:
                self._gc_wakeup.set()

    async def collect_garbage(self) -> bool:
        """One pass: deletes orphaned dependents, finishes foreground, namespace and CRD
        deletions. Returns whether more work may remain."""
        more = False
        objects = self._gc_objects()
        present = set(self.store.uids)
        dependents: dict[str, list[tuple[ResourceType, dict[str, Any]]]] = {}
        for rt, obj in objects:
            refs = obj["metadata"].get("ownerReferences") or []
            for ref in refs:
                dependents.setdefault(ref.get("uid", ""), []).append((rt, obj))
            orphaned = refs and not any(r.get("uid") in present for r in refs)
            if orphaned and not obj["metadata"].get("deletionTimestamp"):
                more = True
                await self._gc_delete(rt, obj, "Background")
        for rt, obj in objects:
            meta = obj["metadata"]
            if not meta.get("deletionTimestamp"):
                continue
            finalizers = meta.get("finalizers") or []
            if "foregroundDeletion" in finalizers:
                live = [
                    d
                    for d in dependents.get(meta.get("uid", ""), [])
                    if d[1]["metadata"].get("uid") in self.store.uids
                ]
                if live:
                    more = True
                    for drt, dep in live:
                        if not dep["metadata"].get("deletionTimestamp"):
                            await self._gc_delete(drt, dep, "Foreground")
                else:
                    more = True
                    await self._drop_finalizer(rt, obj, "foregroundDeletion")
            elif rt.kind == "Namespace" and rt.group == "":
                more = True
                await self._drain_namespace(rt, obj)
            elif rt.kind == "CustomResourceDefinition":
                more = True
                await self._drain_crd(rt, obj)
        return more

    async def _gc_delete(self, rt: ResourceType, obj: dict[str, Any], policy: str) -> None:
        meta = obj["metadata"]
        with contextlib.suppress(APIError):
            await self.delete(
                rt,
                meta.get("namespace"),
                meta["name"],
                {"propagationPolicy": policy, "preconditions": {"uid": meta.get("uid")}},
                user=GC_USER,
            )

    async def _drop_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        meta = obj["metadata"]
        patch = {
            "metadata": {
                "finalizers": [f for f in meta.get("finalizers") or [] if f != finalizer],
                "resourceVersion": meta["resourceVersion"],
            }
        }
        with contextlib.suppress(APIError):
            await self.patch(rt, meta.get("namespace"), meta["name"], MERGE, patch, user=GC_USER)

    async def _drain_namespace(self, ns_type: ResourceType, ns_obj: dict[str, Any]) -> None:
        namespace = ns_obj["metadata"]["name"]
        remaining = 0
        for rt, obj in self._all_objects():
            if rt.namespaced and obj["metadata"].get("namespace") == namespace:
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    await self._gc_delete(rt, obj, "Background")
        if remaining == 0:
            with contextlib.suppress(APIError, StaleError):
                final = self.store.remove(
                    ns_type, "", namespace, ns_obj["metadata"]["resourceVersion"]
                )
                self._after_delete(ns_type, final)

    async def _drain_crd(self, crd_type: ResourceType, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        served = [rt for rt in self.store.served() if rt.crd == name]
        remaining = 0
        if served:
            for obj in list(self.store.iter_stored(served[0].storage_key)):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    await self._gc_delete(served[0], obj, "Background")
        if remaining == 0 and not crd["metadata"].get("finalizers"):
            with contextlib.suppress(APIError, StaleError):
                final = self.store.remove(crd_type, "", name, crd["metadata"]["resourceVersion"])
                self._after_delete(crd_type, final)


_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_HINT = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_HINT = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _qualified_name_error(key: str) -> str | None:
    """Why ``key`` is not a qualified name (``[prefix/]name``), as apimachinery words it."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "prefix part must be non-empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return (
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return _QUALIFIED_HINT
    return None


def _validate_metadata(meta: dict[str, Any]) -> list[tuple[str, str, str]]:
    """ObjectMeta checks every kind gets: label keys and values, annotation keys, finalizers."""
    errors: list[tuple[str, str, str]] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return [("metadata.labels", "Invalid value", "Invalid value: must be a map")]
    for key, value in labels.items():
        why = _qualified_name_error(str(key))
        if why:
            errors.append(("metadata.labels", "Invalid value", f'Invalid value: "{key}": {why}'))
        if not isinstance(value, str):
            errors.append(
                (
                    "metadata.labels",
                    "Invalid value",
                    f"Invalid value: {json.dumps(value)}: must be a string",
                )
            )
        elif len(value) > 63:
            errors.append(
                (
                    "metadata.labels",
                    "Invalid value",
                    f'Invalid value: "{value}": must be no more than 63 characters',
                )
            )
        elif not _LABEL_VALUE.match(value):
            errors.append(
                (
                    "metadata.labels",
                    "Invalid value",
                    f'Invalid value: "{value}": {_LABEL_VALUE_HINT}',
                )
            )
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, dict):
        for key, value in annotations.items():
            why = _qualified_name_error(str(key))
            if why:
                errors.append(
                    ("metadata.annotations", "Invalid value", f'Invalid value: "{key}": {why}')
                )
            if not isinstance(value, str):
                errors.append(
                    (
                        "metadata.annotations",
                        "Invalid value",
                        f"Invalid value: {json.dumps(value)}: must be a string",
                    )
                )
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > 256 * 1024:
            errors.append(
                ("metadata.annotations", "Too long", "Too long: may not be more than 262144 bytes")
            )
    for i, finalizer in enumerate(meta.get("finalizers") or []):
        why = _qualified_name_error(str(finalizer))
        if why:
            errors.append(
                (
                    f"metadata.finalizers[{i}]",
                    "Invalid value",
                    f'Invalid value: "{finalizer}": {why}',
                )
            )
        elif "/" not in str(finalizer) and finalizer not in (
            "kubernetes",
            "orphan",
            "foregroundDeletion",
        ):
            errors.append(
                (
                    f"metadata.finalizers[{i}]",
                    "Invalid value",
                    f'Invalid value: "{finalizer}": name is neither a standard finalizer '
                    "name nor is it fully qualified",
                )
            )
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref, dict) or not ref.get(key):
                errors.append(
                    (
                        f"metadata.ownerReferences[{i}].{key}",
                        "Invalid value",
                        f'Invalid value: "": {key} must not be empty',
                    )
                )
    return errors


def _set_condition(obj: dict[str, Any], ctype: str, status: str, reason: str, message: str) -> None:
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now_rfc3339()
            cond.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": ctype,
            "status": status,
            "lastTransitionTime": now_rfc3339(),
            "reason": reason,
            "message": message,
        }
    )


def _unknown_fields(given: Any, admitted: Any, prefix: str = "") -> list[str]:
    """Paths present in ``given`` but pruned from ``admitted`` (defaulting only adds)."""
    out: list[str] = []
    if isinstance(given, dict) and isinstance(admitted, dict):
        for key, value in given.items():
            path = f"{prefix}.{key}" if prefix else key
            if key not in admitted:
                if prefix == "" and key in ("apiVersion", "kind", "metadata", "status"):
                    continue
                out.append(path)
            elif prefix != "" or key != "metadata":
                out.extend(_unknown_fields(value, admitted[key], path))
    elif isinstance(given, list) and isinstance(admitted, list) and len(given) == len(admitted):
        for i, (g, a) in enumerate(zip(given, admitted, strict=True)):
            out.extend(_unknown_fields(g, a, f"{prefix}[{i}]"))
    return out


__all__ = ["APPLY", "JSON_PATCH", "MERGE", "STRATEGIC", "Registry", "TooOld"]
