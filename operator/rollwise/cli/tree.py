"""A Rollout's revisions as a tree: revision → Deployment → ReplicaSet → pod, with ready counts,
states and the images each revision runs, as ``kubectl rollwise get rollout`` shows them.

Pure: built from the objects the API server returned (the revision Deployments the operator
labels ``rollwise.dev/rollout`` and owns, their ReplicaSets and pods, matched by owner
references; :meth:`rollwise.cli.kube.Cluster.workloads` fetches them) and drawn with ``now``.

A cluster that runs no controllers (an API emulator) has Deployments but no ReplicaSets or
pods; the tree says so instead of showing nothing, as it says when a Deployment has no
ReplicaSet yet or a ReplicaSet no pods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollwise.cli.colour import PLAIN, Palette
from rollwise.cli.text import UNICODE, Symbols, human_duration, parse_time, table
from rollwise.core.observations import REVISION_LABEL, revision_of

#: Pods shown per ReplicaSet; the rest are counted.
MAX_PODS = 12

#: Roles of a revision, in the order the tree lists them.
CANARY = "canary"
TEMPLATE = "template"
STABLE = "stable"
ROLLED_BACK = "rolled back"
ABORTED = "aborted"
RETIRED = "retired"
BASELINE = "baseline"
ROLE_ORDER = (CANARY, TEMPLATE, STABLE, BASELINE, ROLLED_BACK, ABORTED, RETIRED)


@dataclass(frozen=True)
class PodNode:
    name: str
    state: str
    ready: int
    containers: int
    restarts: int
    created: datetime | None


@dataclass(frozen=True)
class ReplicaSetNode:
    name: str
    desired: int
    ready: int
    created: datetime | None
    pods: tuple[PodNode, ...]


@dataclass(frozen=True)
class DeploymentNode:
    name: str
    desired: int
    ready: int
    updated: int
    available: int
    state: str
    created: datetime | None
    replica_sets: tuple[ReplicaSetNode, ...]
    hidden_replica_sets: int
    """ReplicaSets of the Deployment scaled to zero and without pods (the Deployment scaled
    down, or the earlier ReplicaSets of a restart): counted, not drawn."""


@dataclass(frozen=True)
class RevisionNode:
    revision: str
    roles: tuple[str, ...]
    images: tuple[tuple[str, str], ...]
    """``(container, image)`` of the revision's pod template; init containers as
    ``init:NAME``."""
    deployment: DeploymentNode | None
    note: str = ""


@dataclass(frozen=True)
class RevisionTree:
    revisions: tuple[RevisionNode, ...]
    replica_sets_served: bool = True
    pods_served: bool = True


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    return _as_dict(obj.get("metadata"))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _owned_by(obj: Mapping[str, Any], uid: object) -> bool:
    refs = _meta(obj).get("ownerReferences") or []
    return any(isinstance(r, Mapping) and r.get("controller") and r.get("uid") == uid for r in refs)


def template_images(template: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """``(container, image)`` of a pod template, containers first, then init containers
    (named ``init:NAME``)."""
    spec = _as_dict(_as_dict(template).get("spec"))
    found: list[tuple[str, str]] = []
    for key, prefix in (("containers", ""), ("initContainers", "init:")):
        for container in spec.get(key) or []:
            if isinstance(container, Mapping):
                found.append(
                    (prefix + str(container.get("name", "?")), str(container.get("image", "?")))
                )
    return tuple(found)


def pod_state(pod: Mapping[str, Any]) -> str:
    """A pod's state in kubectl's words: ``Running``, ``Pending``, ``ContainerCreating``,
    ``CrashLoopBackOff``, ``Init:ErrImagePull``, ``Terminating``..."""
    if _meta(pod).get("deletionTimestamp"):
        return "Terminating"
    status = _as_dict(pod.get("status"))
    if status.get("reason"):
        return str(status["reason"])
    for key, prefix in (("initContainerStatuses", "Init:"), ("containerStatuses", "")):
        for container in status.get(key) or []:
            state = _as_dict(_as_dict(container).get("state"))
            waiting = _as_dict(state.get("waiting")).get("reason")
            if waiting and waiting != "PodInitializing":
                return prefix + str(waiting)
            terminated = _as_dict(state.get("terminated"))
            if terminated.get("reason") and not (prefix and terminated.get("exitCode") == 0):
                return prefix + str(terminated["reason"])
    return str(status.get("phase") or "Unknown")


def _pod(pod: Mapping[str, Any]) -> PodNode:
    spec = _as_dict(pod.get("spec"))
    statuses = [_as_dict(c) for c in _as_dict(pod.get("status")).get("containerStatuses") or []]
    return PodNode(
        name=str(_meta(pod).get("name", "?")),
        state=pod_state(pod),
        ready=sum(1 for c in statuses if c.get("ready")),
        containers=len(spec.get("containers") or []) or len(statuses),
        restarts=sum(_int(c.get("restartCount")) for c in statuses),
        created=parse_time(_meta(pod).get("creationTimestamp")),
    )


def _deployment_state(deployment: Mapping[str, Any]) -> str:
    meta, spec = _meta(deployment), _as_dict(deployment.get("spec"))
    status = _as_dict(deployment.get("status"))
    desired = _int(spec.get("replicas", 1))
    for cond in status.get("conditions") or []:
        c = _as_dict(cond)
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return "Stalled"
    if desired == 0:
        return "ScaledDown"
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    current = generation is None or (isinstance(observed, int) and observed >= generation)
    if (
        current
        and _int(status.get("updatedReplicas")) >= desired
        and _int(status.get("availableReplicas")) >= desired
        and _int(status.get("replicas")) <= desired
    ):
        return "Available"
    return "Progressing"


def _deployment(
    deployment: Mapping[str, Any],
    replica_sets: Sequence[Mapping[str, Any]] | None,
    pods: Sequence[Mapping[str, Any]] | None,
) -> DeploymentNode:
    meta, spec = _meta(deployment), _as_dict(deployment.get("spec"))
    status = _as_dict(deployment.get("status"))
    nodes: list[ReplicaSetNode] = []
    hidden = 0
    mine = [rs for rs in replica_sets or [] if _owned_by(rs, meta.get("uid"))]
    mine.sort(key=lambda rs: str(_meta(rs).get("creationTimestamp") or ""), reverse=True)
    for rs in mine:
        rs_meta = _meta(rs)
        its_pods = [p for p in pods or [] if _owned_by(p, rs_meta.get("uid"))]
        desired = _int(_as_dict(rs.get("spec")).get("replicas"))
        if desired == 0 and not its_pods:
            hidden += 1
            continue
        its_pods.sort(key=lambda p: str(_meta(p).get("name", "")))
        nodes.append(
            ReplicaSetNode(
                name=str(rs_meta.get("name", "?")),
                desired=desired,
                ready=_int(_as_dict(rs.get("status")).get("readyReplicas")),
                created=parse_time(rs_meta.get("creationTimestamp")),
                pods=tuple(_pod(p) for p in its_pods),
            )
        )
    return DeploymentNode(
        name=str(meta.get("name", "?")),
        desired=_int(spec.get("replicas", 1)),
        ready=_int(status.get("readyReplicas")),
        updated=_int(status.get("updatedReplicas")),
        available=_int(status.get("availableReplicas")),
        state=_deployment_state(deployment),
        created=parse_time(meta.get("creationTimestamp")),
        replica_sets=tuple(nodes),
        hidden_replica_sets=hidden,
    )


def revision_roles(rollout: Mapping[str, Any]) -> dict[str, list[str]]:
    """The roles each revision the Rollout knows plays: canary, template (the spec asks for
    it, the operator has not made it the canary), stable, baseline (the stable template beside
    the canary), rolled back or aborted, retired."""
    status = _as_dict(rollout.get("status"))
    spec = _as_dict(rollout.get("spec"))
    roles: dict[str, list[str]] = {}

    def add(revision: object, role: str) -> None:
        if isinstance(revision, str) and revision:
            roles.setdefault(revision, [])
            if role not in roles[revision]:
                roles[revision].append(role)

    add(status.get("canaryRevision"), CANARY)
    template = spec.get("template")
    if isinstance(template, Mapping):
        current = revision_of(template)
        if current not in (status.get("canaryRevision"), status.get("stableRevision")):
            add(current, TEMPLATE)
    add(status.get("stableRevision"), STABLE)
    add(_as_dict(status.get("baseline")).get("revision"), BASELINE)
    add(status.get("rolledBackRevision"), ABORTED if status.get("aborted") else ROLLED_BACK)
    for retired in status.get("retiredRevisions") or []:
        revision = _as_dict(retired).get("revision")
        if revision != status.get("canaryRevision"):
            # A canary going back to a kept revision stays on record as retired until it
            # completes; it is shown as the canary.
            add(revision, RETIRED)
    return roles


def build_tree(
    rollout: Mapping[str, Any],
    deployments: Sequence[Mapping[str, Any]],
    replica_sets: Sequence[Mapping[str, Any]] | None,
    pods: Sequence[Mapping[str, Any]] | None,
    now: datetime,
) -> RevisionTree:
    """The tree of the Rollout's revisions from its Deployments, ReplicaSets and pods
    (``None``: the server does not serve that resource)."""
    roles = revision_roles(rollout)
    status = _as_dict(rollout.get("status"))
    spec = _as_dict(rollout.get("spec"))
    template = _as_dict(spec.get("template"))
    current = revision_of(template) if template else ""
    by_revision: dict[str, Mapping[str, Any]] = {}
    no_deployment: Mapping[str, Any] = {}
    for deployment in deployments:
        revision = _as_dict(_meta(deployment).get("labels")).get(REVISION_LABEL)
        if isinstance(revision, str) and revision:
            by_revision[revision] = deployment
    removals = {
        str(_as_dict(r).get("revision")): parse_time(_as_dict(r).get("removeAt"))
        for r in status.get("retiredRevisions") or []
    }
    ordered = sorted(
        set(roles) | set(by_revision),
        key=lambda rev: (
            min((ROLE_ORDER.index(r) for r in roles.get(rev, [])), default=len(ROLE_ORDER)),
            # Deployments without a role: the newest first.
            -(
                t.timestamp()
                if (
                    t := parse_time(
                        _meta(by_revision.get(rev, no_deployment)).get("creationTimestamp")
                    )
                )
                else 0.0
            ),
        ),
    )
    nodes: list[RevisionNode] = []
    for revision in ordered:
        found = by_revision.get(revision)
        if found is not None:
            images = template_images(_as_dict(_as_dict(found.get("spec")).get("template")))
        elif revision == current:
            images = template_images(template)
        else:
            images = ()
        note = ""
        if found is None:
            note = "no Deployment" + (" yet" if CANARY in roles.get(revision, []) else "")
        removal = removals.get(revision)
        if removal is not None:
            left = (removal - now).total_seconds()
            note = f"Deployment removed in {human_duration(left)}" if left > 0 else "being removed"
        nodes.append(
            RevisionNode(
                revision=revision,
                roles=tuple(roles.get(revision, [])),
                images=images,
                deployment=None if found is None else _deployment(found, replica_sets, pods),
                note=note,
            )
        )
    return RevisionTree(
        revisions=tuple(nodes),
        replica_sets_served=replica_sets is not None,
        pods_served=pods is not None,
    )


def images_text(images: Sequence[tuple[str, str]]) -> str:
    """``app=ghcr.io/acme/web:1.2, sidecar=busybox``: the ``CONTAINER=IMAGE`` form that
    ``kubectl rollwise set image`` takes."""
    return ", ".join(f"{name}={image}" for name, image in images)


def images_lines(tree: RevisionTree, palette: Palette = PLAIN) -> list[str]:
    """The ``Images:`` lines of the summary: the images of the canary, template and stable
    revisions, container by container, each with the roles that run it."""
    runs: dict[str, dict[str, list[str]]] = {}
    for node in tree.revisions:
        for role in node.roles:
            if role not in (CANARY, TEMPLATE, STABLE):
                continue
            for container, image in node.images:
                roles = runs.setdefault(container, {}).setdefault(image, [])
                if role not in roles:
                    roles.append(role)
    lines: list[str] = []
    for container, images in runs.items():
        for image, roles in images.items():
            head = "Images:      " if not lines else "             "
            words = ", ".join(palette.word(r) for r in roles)
            lines.append(f"{head}{container}={image} ({words})")
    return lines


def _ready(ready: int, desired: int, palette: Palette) -> str:
    text = f"{ready}/{desired}"
    if desired == 0:
        return text
    return palette.good(text) if ready >= desired else palette.warn(text)


def _age(created: datetime | None, now: datetime) -> str:
    return human_duration((now - created).total_seconds()) if created is not None else ""


@dataclass
class _Row:
    """One line of the drawn tree (name, kind, status, ready, age, info) and its children."""

    cells: list[str]
    children: list[_Row] = field(default_factory=list)


def _note(text: str, palette: Palette) -> _Row:
    return _Row([palette.dim(f"({text})"), "", "", "", "", ""])


def _pod_row(pod: PodNode, now: datetime, palette: Palette) -> _Row:
    state = palette.word(pod.state)
    if pod.state == "Running" and pod.ready < pod.containers:
        state = palette.word(pod.state, "NotReady")
    restarts = palette.warn(f"{pod.restarts} restarts") if pod.restarts else ""
    return _Row(
        [
            pod.name,
            "Pod",
            state,
            _ready(pod.ready, pod.containers, palette),
            _age(pod.created, now),
            restarts,
        ]
    )


def _replica_set_row(rs: ReplicaSetNode, pods_served: bool, now: datetime, p: Palette) -> _Row:
    row = _Row(
        [
            rs.name,
            "ReplicaSet",
            p.word("ScaledDown") if rs.desired == 0 else "",
            _ready(rs.ready, rs.desired, p),
            _age(rs.created, now),
            "",
        ]
    )
    row.children = [_pod_row(pod, now, p) for pod in rs.pods[:MAX_PODS]]
    if len(rs.pods) > MAX_PODS:
        row.children.append(_note(f"and {len(rs.pods) - MAX_PODS} more pods", p))
    if not rs.pods and rs.desired > 0:
        why = "" if pods_served else ": this API server does not serve pods"
        row.children.append(_note(f"no pods yet{why}", p))
    return row


def _deployment_row(
    node: RevisionNode, deployment: DeploymentNode, tree: RevisionTree, now: datetime, p: Palette
) -> _Row:
    row = _Row(
        [
            deployment.name,
            "Deployment",
            p.word(deployment.state),
            _ready(deployment.ready, deployment.desired, p),
            _age(deployment.created, now),
            node.note,
        ]
    )
    row.children = [
        _replica_set_row(rs, tree.pods_served, now, p) for rs in deployment.replica_sets
    ]
    if deployment.hidden_replica_sets:
        plural = "s" if deployment.hidden_replica_sets > 1 else ""
        row.children.append(
            _note(f"{deployment.hidden_replica_sets} ReplicaSet{plural} scaled to 0", p)
        )
    if not tree.replica_sets_served:
        row.children.append(
            _note("no ReplicaSets: this API server does not serve them, so no pods run here", p)
        )
    elif not deployment.replica_sets and deployment.desired > 0:
        row.children.append(
            _note("no ReplicaSet yet: the Deployment controller has not created one", p)
        )
    return row


def _flatten(row: _Row, symbols: Symbols, out: list[list[str]], parents: str = "") -> None:
    """Appends ``row`` and its descendants to ``out``, each child's name after its branch."""
    for i, child in enumerate(row.children):
        last = i == len(row.children) - 1
        branch = symbols.tree_last if last else symbols.tree_branch
        out.append([parents + branch + child.cells[0], *child.cells[1:]])
        _flatten(child, symbols, out, parents + (symbols.tree_space if last else symbols.tree_pipe))


def tree_lines(
    tree: RevisionTree,
    now: datetime,
    *,
    symbols: Symbols = UNICODE,
    palette: Palette = PLAIN,
) -> list[str]:
    """The ``Revisions:`` block: one row per revision, Deployment, ReplicaSet and pod."""
    if not tree.revisions:
        return ["Revisions:  <none> (no revision Deployment found)"]
    rows: list[list[str]] = []
    for node in tree.revisions:
        roles = ", ".join(palette.word(r) for r in node.roles) or palette.dim("-")
        top = _Row([node.revision, "Revision", roles, "", "", images_text(node.images)])
        if node.deployment is None:
            top.children.append(_note(node.note, palette))
        else:
            top.children.append(_deployment_row(node, node.deployment, tree, now, palette))
        rows.append(top.cells)
        _flatten(top, symbols, rows)
    return ["Revisions:", *table(["NAME", "KIND", "STATUS", "READY", "AGE", "INFO"], rows, "  ")]


__all__ = [
    "ABORTED",
    "CANARY",
    "MAX_PODS",
    "RETIRED",
    "ROLLED_BACK",
    "STABLE",
    "TEMPLATE",
    "DeploymentNode",
    "PodNode",
    "ReplicaSetNode",
    "RevisionNode",
    "RevisionTree",
    "build_tree",
    "images_lines",
    "images_text",
    "pod_state",
    "revision_roles",
    "template_images",
    "tree_lines",
]
