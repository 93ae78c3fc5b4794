"""A Rollout's pod template and revisions, as ``set image``, ``undo`` and ``restart`` change
them. Pure: the commands (:mod:`rollwise.cli.edit`) read the objects and write what these
functions compute.

- ``set image``: a JSON patch (RFC 6902) that replaces the images of the named containers of
  ``spec.template``, each replacement guarded by ``test`` operations on the container's name
  and current image, so a template that changed after it was read is never half-edited.
- ``undo``: which revision to go back to, and that revision's template. The template is read
  from the revision's Deployment, where the API server stored it with its defaults filled in
  (``imagePullPolicy``, ``terminationMessagePath``, probe timings, ...). Written back like that
  it would hash to a new revision and start a canary; so the defaults the server may have
  added are taken out again, in the combinations most likely first, until the template hashes
  to the revision it came from (:func:`recover_template`).
- ``restart``: the merge patch that makes a Deployment restart its pods, the one
  ``kubectl rollout restart`` writes (a ``kubectl.kubernetes.io/restartedAt`` annotation on the
  pod template): the Deployment controller replaces the pods in a rolling update, within the
  Deployment's ``maxSurge`` and ``maxUnavailable``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollwise.core.observations import REVISION_LABEL, revision_of
from rollwise.core.status_model import format_time

#: The pod template annotation ``kubectl rollout restart`` sets, and ``restart`` sets too.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

#: Most templates :func:`recover_template` hashes before it gives up on an exact match
#: (every combination of twelve defaulted fields, a few tens of milliseconds).
MAX_TRIES = 5_000

_POD_DEFAULTS: dict[str, Any] = {
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 30,
    "dnsPolicy": "ClusterFirst",
    "securityContext": {},
    "schedulerName": "default-scheduler",
}
_CONTAINER_DEFAULTS: dict[str, Any] = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "resources": {},
}
_PROBE_DEFAULTS: dict[str, Any] = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_MODE_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")

#: A place in a template: the keys and list indices that lead to it.
Path = tuple[str | int, ...]


class TemplateError(ValueError):
    """The change cannot be made as asked; the message says why and what is there."""


@dataclass(frozen=True)
class ImageChange:
    container: str
    before: str
    after: str


def parse_image_pair(text: str) -> tuple[str, str]:
    """``CONTAINER=IMAGE`` (``*=IMAGE``: every container) as ``(container, image)``."""
    container, sep, image = text.partition("=")
    example = "e.g. app=ghcr.io/acme/web:1.2, or *=IMAGE for every container"
    if not sep or not container.strip() or not image.strip():
        raise TemplateError(f"{text!r} is not CONTAINER=IMAGE ({example})")
    if any(c.isspace() for c in text):
        raise TemplateError(f"{text!r} is not CONTAINER=IMAGE: names and images have no spaces")
    return container, image


def _containers(template: Mapping[str, Any]) -> list[tuple[str, int, Mapping[str, Any]]]:
    """``(list key, index, container)`` of the template's containers, then init containers."""
    spec = template.get("spec")
    found: list[tuple[str, int, Mapping[str, Any]]] = []
    if not isinstance(spec, Mapping):
        return found
    for key in ("containers", "initContainers"):
        items = spec.get(key)
        for i, container in enumerate(items if isinstance(items, list) else []):
            if isinstance(container, Mapping):
                found.append((key, i, container))
    return found


def container_names(template: Mapping[str, Any]) -> str:
    """``app, sidecar; init containers: migrate`` for messages."""
    names = [str(c.get("name")) for key, _, c in _containers(template) if key == "containers"]
    init = [str(c.get("name")) for key, _, c in _containers(template) if key != "containers"]
    text = ", ".join(names) or "none"
    return text + (f"; init containers: {', '.join(init)}" if init else "")


def set_images(
    template: Mapping[str, Any], pairs: Sequence[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[ImageChange], dict[str, Any]]:
    """The JSON patch on the Rollout that sets the images, the changes it makes, and the
    template after them. Raises :class:`TemplateError` for a container the template lacks."""
    names = [c for c, _ in pairs]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise TemplateError(f'container "{repeated[0]}" is named twice')
    after = json.loads(json.dumps(template))
    containers = _containers(template)
    ops: list[dict[str, Any]] = []
    changes: list[ImageChange] = []
    for wanted, image in pairs:
        matched = [c for c in containers if wanted == "*" or c[2].get("name") == wanted]
        if not matched:
            raise TemplateError(
                f'the template has no container "{wanted}" (containers: '
                f"{container_names(template)})"
            )
        for key, i, container in matched:
            before = container.get("image")
            if before == image:
                continue
            path = f"/spec/template/spec/{key}/{i}"
            ops.append({"op": "test", "path": f"{path}/name", "value": container.get("name")})
            if before is None:
                ops.append({"op": "add", "path": f"{path}/image", "value": image})
            else:
                ops.append({"op": "test", "path": f"{path}/image", "value": before})
                ops.append({"op": "replace", "path": f"{path}/image", "value": image})
            after["spec"][key][i]["image"] = image
            name = str(container.get("name"))
            changes.append(
                ImageChange(name if key == "containers" else f"init:{name}", str(before), image)
            )
    return ops, changes, after


# --------------------------------------------------------------------------------------------
# undo: the revision to go back to


@dataclass(frozen=True)
class Candidate:
    """A revision ``undo`` could go back to: it has a Deployment, so its template is known."""

    revision: str
    deployment: Mapping[str, Any]
    roles: tuple[str, ...]

    @property
    def template(self) -> dict[str, Any]:
        spec = self.deployment.get("spec")
        found = spec.get("template") if isinstance(spec, Mapping) else None
        return dict(found) if isinstance(found, Mapping) else {}

    @property
    def created(self) -> str:
        meta = self.deployment.get("metadata")
        return str(meta.get("creationTimestamp") or "") if isinstance(meta, Mapping) else ""

    def describe(self) -> str:
        return f"{self.revision} ({', '.join(self.roles)})" if self.roles else self.revision


def candidates(
    deployments: Sequence[Mapping[str, Any]], roles: Mapping[str, Sequence[str]], current: str
) -> list[Candidate]:
    """The revisions with a Deployment, newest first, with their roles (and ``current
    template`` for the revision the spec asks for)."""
    found: list[Candidate] = []
    for deployment in deployments:
        meta = deployment.get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        revision = labels.get(REVISION_LABEL) if isinstance(labels, Mapping) else None
        if not isinstance(revision, str) or not revision:
            continue
        its = list(roles.get(revision, []))
        if revision == current:
            its.append("current template")
        found.append(Candidate(revision, deployment, tuple(r for r in its if r != "template")))
    found.sort(key=lambda c: c.created, reverse=True)
    return found


def undo_target(
    found: Sequence[Candidate],
    *,
    current: str,
    stable: str | None,
    rolled_back: str | None,
    to_revision: str | None,
    name: str,
    delay: int,
) -> Candidate:
    """The revision ``undo`` goes back to: ``to_revision`` (a revision id or an unambiguous
    prefix of one); else the stable revision when the template asks for another one (a canary
    runs, or was rolled back); else the newest other revision with a Deployment that was not
    rolled back. Raises :class:`TemplateError` saying what is available when none fits."""
    available = "; ".join(c.describe() for c in found) or "none"
    if to_revision is not None:
        matches = [c for c in found if c.revision.startswith(to_revision)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise TemplateError(
                f'revision "{to_revision}" is ambiguous: it matches '
                + ", ".join(c.revision for c in matches)
            )
        raise TemplateError(
            f'rollout "{name}" has no revision "{to_revision}" to go back to (revisions with a '
            f"Deployment: {available})"
        )
    if stable is not None and stable != current:
        for candidate in found:
            if candidate.revision == stable:
                return candidate
    for candidate in found:
        if candidate.revision not in (current, rolled_back):
            return candidate
    raise TemplateError(
        f'rollout "{name}" has no earlier revision to go back to (revisions with a Deployment: '
        f"{available}); a promoted revision's predecessor keeps its Deployment for "
        f"scaleDownDelaySeconds ({delay}s) after the promotion, then it is deleted"
    )


# --------------------------------------------------------------------------------------------
# undo: the template of a revision, from its Deployment


def _image_pull_default(image: object) -> str:
    tail = str(image).rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _defaulted(template: Mapping[str, Any]) -> list[Path]:
    """The paths of ``template`` whose value is one the API server fills in when a field is
    left out, and so may or may not have been in the template the user wrote."""
    paths: list[Path] = []
    meta = template.get("metadata")
    if isinstance(meta, Mapping):
        if "creationTimestamp" in meta and meta["creationTimestamp"] is None:
            paths.append(("metadata", "creationTimestamp"))
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and RESTARTED_AT in annotations:
            paths.append(("metadata", "annotations", RESTARTED_AT))
    spec = template.get("spec")
    if not isinstance(spec, Mapping):
        return paths
    paths += [("spec", k) for k, v in _POD_DEFAULTS.items() if spec.get(k, object()) == v]
    for key, i, container in _containers(template):
        at: Path = ("spec", key, i)
        paths += [(*at, k) for k, v in _CONTAINER_DEFAULTS.items() if container.get(k) == v]
        if container.get("imagePullPolicy") == _image_pull_default(container.get("image")):
            paths.append((*at, "imagePullPolicy"))
        for j, port in enumerate(container.get("ports") or []):
            if isinstance(port, Mapping) and port.get("protocol") == "TCP":
                paths.append((*at, "ports", j, "protocol"))
        for j, env in enumerate(container.get("env") or []):
            ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, Mapping) else None
            if isinstance(ref, Mapping) and ref.get("apiVersion") == "v1":
                paths.append((*at, "env", j, "valueFrom", "fieldRef", "apiVersion"))
        for probe in _PROBES:
            found = container.get(probe)
            if not isinstance(found, Mapping):
                continue
            paths += [(*at, probe, k) for k, v in _PROBE_DEFAULTS.items() if found.get(k) == v]
            get = found.get("httpGet")
            if isinstance(get, Mapping) and get.get("scheme") == "HTTP":
                paths.append((*at, probe, "httpGet", "scheme"))
    for i, volume in enumerate(spec.get("volumes") or []):
        if not isinstance(volume, Mapping):
            continue
        for kind in _MODE_VOLUMES:
            source = volume.get(kind)
            if isinstance(source, Mapping) and source.get("defaultMode") == 0o644:
                paths.append(("spec", "volumes", i, kind, "defaultMode"))
    return paths


def _without(template: Mapping[str, Any], paths: Sequence[Path]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(template))
    for path in paths:
        node: Any = copy
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        if path[:2] == ("metadata", "annotations") and not node:
            del copy["metadata"]["annotations"]
    return copy


def _subsets(paths: Sequence[Path]) -> Iterator[list[Path]]:
    """Sets of paths to remove, the likeliest first: all of them (the user wrote none of the
    defaults), none (the user wrote them all, as ``kubectl get -o yaml`` shows them), then
    all but one, just one, all but two, ..."""
    n = len(paths)
    seen_sizes: set[int] = set()
    for kept in itertools.chain.from_iterable((k, n - k) for k in range(n + 1)):
        if kept in seen_sizes or not 0 <= kept <= n:
            continue
        seen_sizes.add(kept)
        for keep in itertools.combinations(range(n), kept):
            chosen = set(keep)
            yield [p for i, p in enumerate(paths) if i not in chosen]


def without_revision_label(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a Deployment's pod template without the revision label the operator adds."""
    copy: dict[str, Any] = json.loads(json.dumps(template))
    meta = copy.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if isinstance(labels, dict):
        labels.pop(REVISION_LABEL, None)
    return copy


def recover_template(
    deployment_template: Mapping[str, Any], revision: str, *, max_tries: int = MAX_TRIES
) -> tuple[dict[str, Any], bool]:
    """The Rollout template of ``revision`` from its Deployment's pod template: the revision
    label taken out, and the server's defaults taken out where the user did not write them,
    found by hashing the candidates until one is ``revision`` again. Returns the template and
    whether it hashes to ``revision``; when none does within ``max_tries`` (the server
    rewrote something else, e.g. a quantity ``0.5`` into ``500m``), the template without any
    of the defaults, which runs the same pods under a new revision id."""
    base = without_revision_label(deployment_template)
    paths = _defaulted(base)
    for tries, removed in enumerate(_subsets(paths)):
        if tries >= max_tries:
            break
        candidate = _without(base, removed)
        if revision_of(candidate) == revision:
            return candidate, True
    return _without(base, paths), False


def restart_patch(now: datetime) -> dict[str, Any]:
    """The merge patch on a Deployment that restarts its pods (as ``kubectl rollout
    restart``): the pod template's ``kubectl.kubernetes.io/restartedAt`` set to ``now``."""
    stamp = format_time(now.replace(microsecond=0))
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def template_patch(template: Mapping[str, Any], resource_version: str) -> list[dict[str, Any]]:
    """The JSON patch that replaces the Rollout's whole ``spec.template`` (a merge patch would
    keep fields the new template lacks), on the condition that the Rollout is still at
    ``resource_version``."""
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "replace", "path": "/spec/template", "value": dict(template)},
    ]


__all__ = [
    "MAX_TRIES",
    "RESTARTED_AT",
    "Candidate",
    "ImageChange",
    "TemplateError",
    "candidates",
    "container_names",
    "parse_image_pair",
    "recover_template",
    "restart_patch",
    "set_images",
    "template_patch",
    "undo_target",
    "without_revision_label",
]
