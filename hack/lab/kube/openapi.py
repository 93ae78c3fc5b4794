"""OpenAPI v3 documents of the served group-versions, enough for kubectl.

kubectl reads ``/openapi/v3`` for three things: whether a kind's PATCH accepts the
``fieldValidation`` query parameter (then ``--validate=strict`` is done by the server),
the schemas ``kubectl explain`` prints, and patch metadata for client-side apply. Each
group-version document therefore lists every resource's paths (with the
``x-kubernetes-group-version-kind`` extension and the ``fieldValidation`` parameter) and,
for custom resources, the CRD's schema with ObjectMeta by reference. Built-in kinds get
paths but no component schemas, so kubectl falls back to its compiled-in types for them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hack.lab.kube.resources import ResourceType

_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_OBJECT_META = {
    "description": "ObjectMeta is metadata that all persisted resources must have, which "
    "includes all objects users must create.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "generateName": {
            "type": "string",
            "description": "GenerateName is an optional prefix, used by the server, to generate "
            "a unique name ONLY IF the Name field has not been provided.",
        },
        "namespace": {
            "type": "string",
            "description": "Namespace defines the space within which each name must be unique.",
        },
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string", "default": ""},
            "description": "Map of string keys and values that can be used to organize and "
            "categorize (scope and select) objects.",
        },
        "annotations": {
            "type": "object",
            "additionalProperties": {"type": "string", "default": ""},
            "description": "Annotations is an unstructured key value map stored with a resource.",
        },
        "finalizers": {
            "type": "array",
            "items": {"type": "string", "default": ""},
            "description": "Must be empty before the object is deleted from the registry.",
        },
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "description": "List of objects depended by this object.",
        },
        "uid": {
            "type": "string",
            "description": "UID is the unique in time and space value for this object.",
        },
        "resourceVersion": {
            "type": "string",
            "description": "An opaque value that represents the internal version of this object.",
        },
        "generation": {
            "type": "integer",
            "format": "int64",
            "description": "A sequence "
            "number representing a specific generation of the desired state.",
        },
        "creationTimestamp": {
            "type": "string",
            "format": "date-time",
            "description": "CreationTimestamp is a timestamp representing the server time "
            "when this object was created.",
        },
        "deletionTimestamp": {
            "type": "string",
            "format": "date-time",
            "description": "DeletionTimestamp is RFC 3339 date and time at which this "
            "resource will be deleted.",
        },
    },
}
_PARAMS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
]


def gv_key(rt: ResourceType) -> str:
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def _component_name(rt: ResourceType) -> str:
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType, kind: str | None = None) -> list[dict[str, str]]:
    return [{"group": rt.group, "version": rt.version, "kind": kind or rt.kind}]


def _operation(rt: ResourceType, verb: str, action: str, params: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{verb}{rt.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt)[0],
        "responses": {"200": {"description": "OK"}},
    }
    if params:
        op["parameters"] = list(_PARAMS)
    return op


def _schema(rt: ResourceType) -> dict[str, Any]:
    raw = rt.schema.raw if rt.schema is not None else {"type": "object"}
    body: dict[str, Any] = json.loads(json.dumps(raw))
    props = body.setdefault("properties", {})
    props.setdefault(
        "apiVersion",
        {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this "
            "representation of an object.",
        },
    )
    props.setdefault(
        "kind",
        {
            "type": "string",
            "description": "Kind is a string value representing the REST "
            "resource this object represents.",
        },
    )
    props["metadata"] = {
        "allOf": [{"$ref": f"#/components/schemas/{_META}"}],
        "description": "Standard object's metadata.",
    }
    body.setdefault("type", "object")
    body["x-kubernetes-group-version-kind"] = _gvk(rt)
    return body


def gv_document(types: list[ResourceType]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        base = f"/{gv_key(rt)}"
        coll = (
            f"{base}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else f"{base}/{rt.plural}"
        )
        item = f"{coll}/{{name}}"
        paths[coll] = {
            "get": _operation(rt, "list", "list", False),
            "post": _operation(rt, "create", "post", True),
        }
        paths[item] = {
            "get": _operation(rt, "read", "get", False),
            "put": _operation(rt, "replace", "put", True),
            "patch": _operation(rt, "patch", "patch", True),
            "delete": _operation(rt, "delete", "delete", False),
        }
        if rt.status:
            paths[f"{item}/status"] = {
                "get": _operation(rt, "read", "get", False),
                "put": _operation(rt, "replace", "put", True),
                "patch": _operation(rt, "patch", "patch", True),
            }
        if rt.crd is not None:
            name = _component_name(rt)
            schemas[name] = _schema(rt)
            schemas[f"{name}List"] = {
                "type": "object",
                "description": f"{rt.kind}List is a list of {rt.kind}",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}},
                    "metadata": {"type": "object"},
                },
                "x-kubernetes-group-version-kind": _gvk(rt, f"{rt.kind}List"),
            }
    if schemas:
        schemas[_META] = _OBJECT_META
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def documents(types: list[ResourceType]) -> dict[str, dict[str, Any]]:
    """Every served group-version's document, by ``api/v1`` / ``apis/<group>/<version>``."""
    by_gv: dict[str, list[ResourceType]] = {}
    for rt in types:
        by_gv.setdefault(gv_key(rt), []).append(rt)
    return {key: gv_document(sorted(group, key=lambda r: r.plural)) for key, group in by_gv.items()}


def root(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    paths = {}
    for key, doc in sorted(docs.items()):
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}
