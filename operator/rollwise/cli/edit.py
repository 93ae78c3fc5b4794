"""``set image``, ``undo`` and ``restart``: the commands that change what a Rollout runs.

- ``set image ROLLOUT CONTAINER=IMAGE...`` patches ``spec.template`` (a guarded JSON patch,
  :func:`rollwise.cli.revisions.set_images`): a new revision, which the operator takes through
  the canary steps like any template change.
- ``undo ROLLOUT [--to-revision REV]`` writes an earlier revision's template back into
  ``spec.template``. Back to the stable revision (the default while a canary runs or after a
  rollback) the operator drops the canary at once and stable serves everything, as Argo
  Rollouts does for a rollback to stable; back to an older revision, that revision goes
  through the canary steps.
- ``restart ROLLOUT`` restarts the pods of the stable revision in place, with no new revision
  and no canary: the stable revision's Deployment gets the annotation ``kubectl rollout
  restart`` writes, and the Deployment controller replaces its pods in a rolling update
  within the Deployment's ``maxSurge`` and ``maxUnavailable`` (25% each, as the operator
  creates it), so capacity holds while the pods come back. A template annotation on the
  Rollout would be a new revision instead, and restarting pods would take a whole canary with
  its analysis; restarting is not releasing.

Each prints what it changed, and what the operator will do about it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TextIO

from rollwise.adapters.workloads import deployment_name
from rollwise.cli import revisions as rv
from rollwise.cli.common import ROLLOUTS, CliError
from rollwise.cli.kube import JSON_PATCH, Cluster
from rollwise.cli.text import Symbols
from rollwise.cli.tree import revision_roles, template_images
from rollwise.core.observations import revision_of

_WHERE = "rollout.rollwise.dev"


def _dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _steps(rollout: dict[str, Any]) -> int:
    canary = _dict(_dict(_dict(rollout.get("spec")).get("strategy")).get("canary"))
    steps = canary.get("steps")
    return len(steps) if isinstance(steps, list) else 3


def _what_happens(rollout: dict[str, Any], revision: str, *, undo: bool = False) -> str:
    """What the operator does with ``revision`` as the new template, judging by the status
    (read a moment ago)."""
    status = _dict(rollout.get("status"))
    spec = _dict(rollout.get("spec"))
    name = str(_dict(rollout.get("metadata")).get("name", ""))
    stable, canary = status.get("stableRevision"), status.get("canaryRevision")
    paused = " once resumed (spec.paused is set)" if spec.get("paused") else ""
    watch = f"kubectl rollwise status {name} --watch"
    if not status:
        return "the operator has not seen this rollout yet (no status)"
    if revision == stable:
        dropped = f"; canary {canary} is dropped" if canary and canary != stable else ""
        return f"revision {revision} is the stable revision: it serves all traffic{dropped}"
    if revision == status.get("rolledBackRevision"):
        return (
            f"warning: revision {revision} was rolled back; the operator leaves it alone "
            f"until asked to retry it (kubectl rollwise retry {name})"
        )
    if revision == canary:
        return f"revision {revision} is the canary in progress: it goes on where it is ({watch})"
    step = f"starts at step 1/{_steps(rollout)}{paused} ({watch})"
    if canary:
        return f"revision {revision} replaces canary {canary} and {step}"
    how = "an earlier revision, it" if undo else "it"
    return f"revision {revision} is a canary next to stable {stable}: {how} {step}"


def set_image(
    cluster: Cluster, name: str, pairs: list[tuple[str, str]], out: TextIO, symbols: Symbols
) -> None:
    namespace = cluster.namespace
    rollout = cluster.get_rollout(namespace, name)
    template = _dict(_dict(rollout.get("spec")).get("template"))
    try:
        ops, changes, after = rv.set_images(template, pairs)
    except rv.TemplateError as exc:
        raise CliError(f'rollout "{name}": {exc}') from exc
    if not ops:
        out.write(f"{_WHERE}/{name} image unchanged (already {', '.join(i for _, i in pairs)})\n")
        return
    before = revision_of(template)
    updated = cluster.patch_object(ROLLOUTS, namespace, name, ops, content_type=JSON_PATCH)
    revision = revision_of(_dict(_dict(updated.get("spec")).get("template")) or after)
    out.write(f"{_WHERE}/{name} image updated (revision {before} {symbols.arrow} {revision})\n")
    for change in changes:
        out.write(f"  {change.container}: {change.before} {symbols.arrow} {change.after}\n")
    out.write(_what_happens(rollout, revision) + "\n")


def undo(
    cluster: Cluster,
    name: str,
    *,
    to_revision: str | None,
    out: TextIO,
    err: TextIO,
    symbols: Symbols,
) -> None:
    namespace = cluster.namespace
    rollout = cluster.get_rollout(namespace, name)
    spec = _dict(rollout.get("spec"))
    status = _dict(rollout.get("status"))
    template = _dict(spec.get("template"))
    current = revision_of(template)
    deployments = cluster.revision_deployments(rollout)
    found = rv.candidates(deployments, revision_roles(rollout), current)
    canary_spec = _dict(_dict(spec.get("strategy")).get("canary"))
    delay = canary_spec.get("scaleDownDelaySeconds", 30)
    try:
        target = rv.undo_target(
            found,
            current=current,
            stable=status.get("stableRevision"),
            rolled_back=status.get("rolledBackRevision"),
            to_revision=to_revision,
            name=name,
            delay=int(delay) if isinstance(delay, int) else 30,
        )
    except rv.TemplateError as exc:
        raise CliError(str(exc)) from exc
    if target.revision == current:
        out.write(f"{_WHERE}/{name} already at revision {current} (no change)\n")
        return
    recovered, exact = rv.recover_template(target.template, target.revision)
    version = str(_dict(rollout.get("metadata")).get("resourceVersion", ""))
    cluster.patch_object(
        ROLLOUTS, namespace, name, rv.template_patch(recovered, version), content_type=JSON_PATCH
    )
    written = revision_of(recovered)
    out.write(
        f"{_WHERE}/{name} rolled back to revision {target.revision} "
        f"({current} {symbols.arrow} {written})\n"
    )
    before = dict(template_images(template))
    for container, image in template_images(recovered):
        if before.get(container) != image:
            out.write(f"  {container}: {before.get(container, '-')} {symbols.arrow} {image}\n")
    out.write(_what_happens(rollout, written, undo=True) + "\n")
    if exact:
        return
    out.flush()
    err.write(
        f"warning: the template of revision {target.revision} could not be recovered exactly "
        "from its Deployment (the API server rewrote part of it); the one written runs the same "
        f"pods as revision {written}, which takes the canary steps like any new revision "
        f"(kubectl rollwise abort {name} stops it)\n"
    )


def restart(cluster: Cluster, name: str, out: TextIO) -> None:
    namespace = cluster.namespace
    rollout = cluster.get_rollout(namespace, name)
    status = _dict(rollout.get("status"))
    stable = status.get("stableRevision")
    if not isinstance(stable, str) or not stable:
        raise CliError(
            f'rollout "{name}" has no stable revision yet (is the Rollwise operator running?): '
            "nothing to restart"
        )
    target = deployment_name(name, stable)
    patched = cluster.patch_deployment(namespace, target, rv.restart_patch(datetime.now(UTC)))
    spec = _dict(patched.get("spec"))
    rolling = _dict(_dict(spec.get("strategy")).get("rollingUpdate"))
    surge, unavailable = rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%")
    out.write(
        f"{_WHERE}/{name} restarting the {spec.get('replicas', '?')} pods of stable revision "
        f"{stable} (Deployment {target}): a rolling restart, maxSurge {surge}, "
        f"maxUnavailable {unavailable}; no new revision, no canary\n"
    )
    canary = status.get("canaryRevision")
    if isinstance(canary, str) and canary and canary != stable:
        out.write(
            f"the pods of canary {canary} are not restarted (the canary goes on; to restart "
            f"them too: kubectl rollout restart deployment/{deployment_name(name, canary)})\n"
        )


__all__ = ["restart", "set_image", "undo"]
