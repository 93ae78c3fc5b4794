"""``kubectl rollwise approve rollout/NAME --role R``: approve a Rollout's approval step.

The plugin writes the request ``rollwise.dev/approve`` (``{"id", "role", "step"}``, the step
0-based) for the step the canary is at (or the next approval step, or ``--step``); the
operator's admission webhook records it with the identity the API server authenticated, or
refuses it (the person who changed the template, a role not held, a second role by the same
person, a role someone else approved), and the refusal reaches the terminal as the API
server's answer. The plugin then reads the record back (:mod:`rollwise.core.rollout.approvals`
describes the records): only a recorded approval counts.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from rollwise.cli.common import ROLLOUTS, CliError
from rollwise.cli.session import Session

_WHERE = "rollout.rollwise.dev"
_NO_WEBHOOK = "no admission webhook recorded the request (is the operator's webhook installed?)"


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    found = meta.get("annotations") if isinstance(meta, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def approval_steps(rollout: dict[str, Any]) -> dict[int, list[str]]:
    """The Rollout's approval steps: 0-based index -> roles."""
    spec = rollout.get("spec") or {}
    canary = (spec.get("strategy") or {}).get("canary") or {}
    steps = canary.get("steps")
    found: dict[int, list[str]] = {}
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        approval = step.get("approval") if isinstance(step, dict) else None
        roles = approval.get("roles") if isinstance(approval, dict) else None
        if isinstance(roles, list):
            found[index] = [str(r) for r in roles]
    return found


def step_to_approve(rollout: dict[str, Any], name: str, role: str, step: int | None) -> int:
    """The 0-based approval step ``approve`` asks for: ``step`` (1-based) when given, else the
    step the canary is at when it is an approval step, else the next approval step."""
    steps = approval_steps(rollout)
    if not steps:
        raise CliError(f'rollout "{name}" has no approval step (strategy.canary.steps[].approval)')
    if step is not None:
        index = step - 1
        if index not in steps:
            listed = ", ".join(str(i + 1) for i in sorted(steps))
            raise CliError(f'step {step} of rollout "{name}" is not an approval step ({listed})')
    else:
        status = rollout.get("status") or {}
        if not status.get("canaryRevision"):
            raise CliError(
                f'rollout "{name}" runs no canary: there is no revision to approve (an approval '
                "is for the canary revision)"
            )
        current = status.get("currentStepIndex")
        current = current if isinstance(current, int) else 0
        later = [i for i in sorted(steps) if i >= current]
        if not later:
            raise CliError(f'rollout "{name}" is past its approval steps')
        index = later[0]
    if role not in steps[index]:
        raise CliError(
            f'step {index + 1} of rollout "{name}" asks for approval by '
            f"{', '.join(steps[index])}, not {role}"
        )
    return index


def _record(after: dict[str, Any], request: str) -> dict[str, Any] | None:
    raw = _annotations(after).get("rollwise.dev/approvals")
    try:
        items = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("id") == request:
            return item
    return None


def _earlier(after: dict[str, Any], role: str, step: int) -> dict[str, Any] | None:
    raw = _annotations(after).get("rollwise.dev/approvals")
    try:
        items = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("role") == role and item.get("step") == step:
            return item
    return None


def approve_patch(request: str, role: str, step: int) -> dict[str, Any]:
    """The request that approves the 0-based approval step ``step`` in ``role``."""
    value = json.dumps({"id": request, "role": role, "step": step})
    return {"metadata": {"annotations": {"rollwise.dev/approve": value}}}


def approve_rollout(s: Session, args: argparse.Namespace, name: str) -> int:
    from rollwise.cli import manual  # noqa: PLC0415

    out, err = s.out, s.err
    cluster = s.cluster(args)
    rollout = cluster.get_object(ROLLOUTS, cluster.namespace, name)
    index = step_to_approve(rollout, name, args.role, args.step)
    request = manual.request_id(datetime.now(UTC))
    after = cluster.patch_object(
        ROLLOUTS, cluster.namespace, name, approve_patch(request, args.role, index)
    )
    out.write(f"{_WHERE}/{name} approve requested (id {request})\n")
    record = _record(after, request)
    if record is not None:
        out.write(
            f"approval recorded: role {record.get('role')} for revision {record.get('revision')} "
            f"at step {index + 1} by {record.get('user')}\n"
        )
        return 0
    pending = _annotations(after).get("rollwise.dev/approve")
    earlier = _earlier(after, args.role, index) if pending is None else None
    if earlier is not None:
        out.write(
            f"approval already recorded: role {earlier.get('role')} for revision "
            f"{earlier.get('revision')} by {earlier.get('user')} at {earlier.get('at')}\n"
        )
        return 0
    out.flush()
    why = _NO_WEBHOOK if pending is not None else "the request was taken off but no record names it"
    err.write(
        f"warning: no approval recorded: {why}; approvals count only when the operator's "
        "webhook records them, so this one does not count\n"
    )
    return 1


__all__ = ["approval_steps", "approve_patch", "approve_rollout", "step_to_approve"]
