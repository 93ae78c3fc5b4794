"""The ModelRelease commands: approve (a Rollout's approval step too:
:mod:`rollwise.cli.rollout_approve`), revoke, waive and override.

Each writes a request annotation and waits for the operator's admission webhook to consume it
and record who asked (:mod:`rollwise.cli.records` reads the records back); without a webhook
the request stays and the command says so.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from rollwise.cli.common import (
    MODELRELEASES,
    ROLLOUTS,
    CliError,
)
from rollwise.cli.session import Session

_RELEASE = "modelrelease.rollwise.dev"


_NO_WEBHOOK = "no admission webhook recorded the request (is the operator's webhook installed?)"


def _consumed(name: str) -> str:
    return (
        "the request was taken off the object but no record names it "
        f"(kubectl get modelrelease {name} -o yaml)"
    )


def _annotations(obj: dict[str, object]) -> dict[str, object]:
    meta = obj.get("metadata")
    found = meta.get("annotations") if isinstance(meta, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _still_requested(after: dict[str, object], annotation: str, request: str) -> bool:
    """Whether this request (by id) is still on the object: no webhook took it."""
    raw = _annotations(after).get(annotation)
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("id") == request


def _approve(args: argparse.Namespace, s: Session) -> int:
    from rollwise.cli import manual, records  # noqa: PLC0415

    plural, name = args.target
    if plural == ROLLOUTS:
        from rollwise.cli.rollout_approve import approve_rollout  # noqa: PLC0415

        if args.version is not None:
            raise CliError(
                "--version is for a ModelRelease; a Rollout's approval is for its canary"
            )
        return approve_rollout(s, args, name)
    if args.step is not None:
        raise CliError("--step is for a Rollout's approval step")
    args.release = name
    out, err = s.out, s.err
    cluster = s.cluster(args)
    release = cluster.get_object(MODELRELEASES, cluster.namespace, args.release)
    spec = release.get("spec")
    version = args.version or (str(spec.get("version") or "") if isinstance(spec, dict) else "")
    if not version:
        raise CliError(f'modelrelease "{args.release}" has no spec.version: use --version')
    request = manual.request_id(datetime.now(UTC))
    after = cluster.patch_object(
        MODELRELEASES,
        cluster.namespace,
        args.release,
        manual.approve_patch(request, args.role, version),
    )
    out.write(f"{_RELEASE}/{args.release} approve requested (id {request})\n")
    record = records.new_approval(_annotations(release), _annotations(after), args.role, version)
    if record is not None:
        out.write(
            f"approval recorded: role {record.role} for version {record.version} by {record.user}\n"
        )
        return 0
    consumed = not _still_requested(after, manual.APPROVE, request)
    earlier = records.approval_for(_annotations(after), args.role, version) if consumed else None
    if earlier is not None:
        # The webhook took the request and added nothing: the same person approved this role
        # before (a retried approval).
        out.write(
            f"approval already recorded: role {earlier.role} for version {earlier.version} by "
            f"{earlier.user} at {earlier.at}\n"
        )
        return 0
    out.flush()
    why = _consumed(args.release) if consumed else _NO_WEBHOOK
    err.write(
        f"warning: no approval recorded: {why}; approvals count only when the operator's "
        "webhook records them, so this one does not count\n"
    )
    return 1


def _revoke(args: argparse.Namespace, s: Session) -> int:
    from rollwise.cli import manual, records  # noqa: PLC0415

    out, err = s.out, s.err
    cluster = s.cluster(args)
    cluster.get_object(MODELRELEASES, cluster.namespace, args.release)
    request = manual.request_id(datetime.now(UTC))
    after = cluster.patch_object(
        MODELRELEASES, cluster.namespace, args.release, manual.revoke_patch(request, args.reason)
    )
    out.write(f"{_RELEASE}/{args.release} revoke requested (id {request})\n")
    record = records.revocation_of(_annotations(after), request)
    if record is not None:
        out.write(f"revocation recorded: by {record.user}, reason: {record.reason}\n")
        return 0
    if _still_requested(after, manual.REVOKE, request):
        out.write(
            f"pending: {_NO_WEBHOOK}; the operator honours the unsigned request, with the "
            "user unknown\n"
        )
        return 0
    out.flush()
    err.write(f"warning: no revocation recorded: {_consumed(args.release)}\n")
    return 1


def _waive(args: argparse.Namespace, s: Session) -> int:
    from rollwise.cli import manual, records  # noqa: PLC0415

    out, err = s.out, s.err
    cluster = s.cluster(args)
    release = cluster.get_object(MODELRELEASES, cluster.namespace, args.release)
    request = manual.request_id(datetime.now(UTC))
    after = cluster.patch_object(
        MODELRELEASES,
        cluster.namespace,
        args.release,
        manual.waive_patch(request, args.gate, args.reason, args.duration),
    )
    out.write(f"{_RELEASE}/{args.release} waive requested (id {request})\n")
    record = records.new_waiver(_annotations(release), _annotations(after), args.gate, args.reason)
    if record is not None:
        out.write(
            f"waiver recorded: gate {record.gate} by {record.user}, expires "
            f"{record.expires_at or '(unknown)'}\n"
        )
        return 0
    out.flush()
    consumed = not _still_requested(after, manual.WAIVE, request)
    why = _consumed(args.release) if consumed else _NO_WEBHOOK
    err.write(
        f"warning: no waiver recorded: {why}; waivers count only when the operator's "
        "webhook records them, so this one does not count\n"
    )
    return 1


def _override_wait(kind: str, obj: dict[str, object]) -> bool:
    """Whether a promote override would need a second person's confirmation now, judging by
    the status (a rolled-back or inconclusive revision; a new revision a confirmed
    post-promotion regression holds; a failed gate)."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return False
    if kind == ROLLOUTS:
        from rollwise.core.observations import revision_of  # noqa: PLC0415

        spec = obj.get("spec")
        template = spec.get("template") if isinstance(spec, dict) else None
        revision = revision_of(template if isinstance(template, dict) else {})
        inconclusive = (
            status.get("canaryRevision") == revision
            and status.get("pauseReason") == "AnalysisInconclusive"
        )
        return (
            status.get("rolledBackRevision") == revision
            or inconclusive
            or _regression_held(status, revision)
        )
    gates = status.get("gates")
    return any(
        isinstance(g, dict) and g.get("name") != "approvals" and g.get("status") == "Failed"
        for g in (gates if isinstance(gates, list) else [])
    )


def _regression_held(status: dict[str, object], revision: str) -> bool:
    """Whether ``revision`` is a new one a confirmed regression with action hold keeps
    waiting (the status's view of :func:`rollwise.core.rollout.overrides.regression_held`)."""
    watch = status.get("postPromotion")
    if status.get("canaryRevision") or not isinstance(watch, dict):
        return False
    if watch.get("action") != "hold" or revision in (
        status.get("stableRevision"),
        watch.get("revision"),
    ):
        return False
    kpis = watch.get("kpis")
    return any(
        isinstance(k, dict) and k.get("state") == "confirmed"
        for k in (kpis if isinstance(kpis, list) else [])
    )


def _override(args: argparse.Namespace, s: Session) -> int:
    from rollwise.cli import manual, records  # noqa: PLC0415

    out, err = s.out, s.err
    plural, name = args.target
    kind = "rollout" if plural == ROLLOUTS else "modelrelease"
    if args.confirm is not None and (args.decision or args.reason):
        raise CliError("--confirm takes no --decision or --reason: it confirms a recorded one")
    if args.confirm is None and not (args.decision and args.reason):
        raise CliError("override needs --decision and --reason, or --confirm ID")
    cluster = s.cluster(args)
    before = cluster.get_object(plural, cluster.namespace, name)
    where = f"{kind}.rollwise.dev/{name}"
    if args.confirm is not None:
        after = cluster.patch_object(
            plural, cluster.namespace, name, manual.confirm_patch(args.confirm)
        )
        out.write(f"{where} confirmation of override {args.confirm} requested\n")
        record = records.override_of(_annotations(after), args.confirm)
        if record is not None and record.confirmed_by:
            out.write(
                f"override {record.id} ({record.decision} by {record.user}) confirmed by "
                f"{record.confirmed_by} at {record.confirmed_at}\n"
            )
            return 0
        pending = _annotations(after).get(manual.CONFIRM_OVERRIDE) is not None
        why = _NO_WEBHOOK if pending else "the request was taken off but no record shows it"
        out.flush()
        err.write(f"warning: no confirmation recorded: {why}, so the override still waits\n")
        return 1
    request = manual.request_id(datetime.now(UTC))
    wait = args.decision == "promote" and _override_wait(plural, before)
    after = cluster.patch_object(
        plural, cluster.namespace, name, manual.override_patch(request, args.decision, args.reason)
    )
    out.write(f"{where} {args.decision} override requested (id {request})\n")
    record = records.override_of(_annotations(after), request)
    if record is not None:
        what = "version" if plural == MODELRELEASES else "revision"
        out.write(
            f"override recorded: {record.decision} of {what} {record.target} by {record.user}\n"
        )
        if wait:
            out.write(
                "it takes effect once a second person confirms it: kubectl rollwise override "
                f"{kind}/{name} --confirm {request}\n"
            )
        return 0
    out.flush()
    consumed = not _still_requested(after, manual.OVERRIDE, request)
    why = "the request was taken off but no record names it" if consumed else _NO_WEBHOOK
    err.write(
        f"warning: no override recorded: {why}; overrides count only when the operator's "
        "webhook records them, so this one does nothing\n"
    )
    return 1


RELEASE_COMMANDS = {
    "approve": _approve,
    "revoke": _revoke,
    "waive": _waive,
    "override": _override,
}
