"""Entry point of ``kubectl-rollwise`` (``kubectl rollwise ...``): arguments and commands.

Each command is a few API calls (:mod:`rollwise.cli.kube`) around a pure view
(:mod:`rollwise.cli.render`) or a pure patch (:mod:`rollwise.cli.manual`). Every failure the
user can cause or meet (a wrong name, no CRD, an unreachable server, a bad kubeconfig) ends as
one ``error: ...`` line on stderr and exit code 1; bad arguments exit 2 with the usage, as
argparse does; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from rollwise.cli import manual, records
from rollwise.cli.kube import MODELRELEASES, ROLLOUTS, CliError, Cluster, NotServed, connect
from rollwise.cli.render import ASCII, UNICODE, Symbols, render_rollout, render_rollout_table
from rollwise.cli.render_release import render_release, render_release_table
from rollwise.cli.watch import watch_release, watch_rollout
from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.observations import RequestKind, revision_of

PROG = "kubectl rollwise"

_ROLLOUT_NAMES = ("rollout", "rollouts", "rwr")
_RELEASE_NAMES = ("modelrelease", "modelreleases", "mr", "mrel")

_DESCRIPTION = """\
Watch and steer Rollwise rollouts and model releases.

Manual operations write what the operator reads: promote, abort and retry set the annotation
rollwise.dev/<request> to a fresh request id (each id acts once); pause and resume set
spec.paused. On a ModelRelease, approve, revoke and waive write a JSON request
(rollwise.dev/approve, /revoke, /waive) that the operator's admission webhook records with
the user the API server authenticated; the plugin then prints what was recorded. override
(both kinds) records a promote, hold or rollback decision the same way; a promote past a
failed check waits for a second person's --confirm.
"""

_EPILOG = """\
examples:
  kubectl rollwise list -A
  kubectl rollwise get rollout demo --watch
  kubectl rollwise promote demo            # skip the current pause or step
  kubectl rollwise promote demo --full     # straight to 100%, skipping every check
  kubectl rollwise abort demo              # traffic back to stable, canary scaled down
  kubectl rollwise retry demo              # try a rolled-back revision again
  kubectl rollwise pause demo / resume demo
  kubectl rollwise get modelrelease fraud-detector-7 --watch
  kubectl rollwise approve modelrelease/fraud-detector-7 --role security
  kubectl rollwise waive mr/fraud-detector-7 --gate sbom --reason "CVE triaged" --for 24h
  kubectl rollwise revoke fraud-detector-7 --reason "wrong training data"
  kubectl rollwise override rollout/demo --decision hold --reason "checking a dashboard"
  kubectl rollwise override rollout/demo --confirm ID   # a second person confirms a promote
"""


def _duration(text: str) -> float:
    """``--timeout``: a duration like kubectl's (``30s``, ``5m``, ``1h``) or plain seconds."""
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_seconds(text)
    except InvalidDuration as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _release_name(text: str) -> str:
    """A ModelRelease named ``NAME``, ``modelrelease/NAME`` (``mr/NAME``, ...) or
    ``modelrelease.rollwise.dev/NAME`` as the plugin prints it."""
    kind, sep, name = text.rpartition("/")
    if not sep:
        return text
    kinds = {*_RELEASE_NAMES, *(f"{k}.rollwise.dev" for k in _RELEASE_NAMES)}
    if kind.lower() in kinds and name:
        return name
    raise argparse.ArgumentTypeError(f"{text!r} is not a ModelRelease (NAME or modelrelease/NAME)")


def _override_target(text: str) -> tuple[str, str]:
    """``rollout/NAME`` or ``modelrelease/NAME`` (short and ``.rollwise.dev`` forms too):
    (plural, name). The kind is required: an override means something different for each."""
    kind, sep, name = text.rpartition("/")
    kind = kind.lower().removesuffix(".rollwise.dev")
    if sep and name and kind in _ROLLOUT_NAMES:
        return ROLLOUTS, name
    if sep and name and kind in _RELEASE_NAMES:
        return MODELRELEASES, name
    raise argparse.ArgumentTypeError(f"{text!r} is not rollout/NAME nor modelrelease/NAME")


def _reason(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the reason must not be empty")
    return text


def _waiver_duration(text: str) -> str:
    """``--for``: a duration (``24h``, ``90m``, ``1h30m``), sent as the user wrote it; the
    webhook enforces the longest waiver it allows."""
    try:
        seconds = parse_seconds(text)
    except InvalidDuration as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return text


def _connection_flags(*, suppress: bool) -> argparse.ArgumentParser:
    """``-n``, ``--kubeconfig``, ``--context``, accepted before or after the command."""
    default = argparse.SUPPRESS if suppress else None
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("connection")
    group.add_argument(
        "-n",
        "--namespace",
        default=default,
        help="namespace (default: the kubeconfig context's, else 'default')",
    )
    group.add_argument(
        "--kubeconfig", default=default, help="path to the kubeconfig file ($KUBECONFIG)"
    )
    group.add_argument("--context", default=default, help="kubeconfig context to use")
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_connection_flags(suppress=False)],
    )
    common = [_connection_flags(suppress=True)]
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    get = commands.add_parser(
        "get",
        parents=common,
        help="show one rollout or model release: progress, checks, conditions, events",
        description="Show one rollout: phase, revisions, steps (the current one marked), "
        "canary weight set and actually routed, the current analysis with values and "
        "thresholds, conditions and recent events. Or one model release: stage and phase, "
        "model, artifact, change, serving backend and canary progress, alias, gates, "
        "approvals, history, conditions and recent events.",
    )
    get.add_argument(
        "kind",
        choices=_ROLLOUT_NAMES + _RELEASE_NAMES,
        metavar="KIND",
        help="'rollout' (rollouts, rwr) or 'modelrelease' (modelreleases, mr, mrel)",
    )
    get.add_argument("name", help="name of the Rollout or ModelRelease")
    get.add_argument(
        "-w", "--watch", action="store_true", help="keep watching and redraw on every change"
    )
    get.add_argument(
        "--timeout",
        type=_duration,
        default=None,
        help="with --watch: stop after this long (e.g. 30s, 5m; default: until Ctrl-C)",
    )

    listing = commands.add_parser(
        "list",
        parents=common,
        help="list rollouts (and model releases)",
        description="List Rollouts, then ModelReleases when their CRD is installed.",
    )
    listing.add_argument(
        "kind", nargs="?", choices=_ROLLOUT_NAMES, metavar="rollouts", help="optional"
    )
    listing.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list across all namespaces"
    )

    promote = commands.add_parser(
        "promote",
        parents=common,
        help="skip the current step (rollwise.dev/promote), or go to 100%% with --full",
        description="Ask the operator to skip the current pause, weight or analysis step "
        "(annotation rollwise.dev/promote). With --full, promote the canary straight to "
        "100%%, skipping every remaining step and check (rollwise.dev/promote-full; a Warning "
        "event records it).",
    )
    promote.add_argument("name", help="name of the Rollout")
    promote.add_argument(
        "--full", action="store_true", help="skip every remaining step and analysis"
    )
    for command, annotation, text in (
        ("abort", "rollwise.dev/abort", "roll the canary back: traffic to stable, canary down"),
        (
            "retry",
            "rollwise.dev/retry",
            "retry a rolled-back revision from step 1, or re-run an inconclusive analysis",
        ),
    ):
        sub = commands.add_parser(
            command,
            parents=common,
            help=f"{text} ({annotation})",
            description=f"Ask the operator to {text} (annotation {annotation}).",
        )
        sub.add_argument("name", help="name of the Rollout")
    for command, text in (
        ("pause", "hold the rollout where it is (spec.paused: true)"),
        ("resume", "continue a paused rollout (spec.paused: false)"),
    ):
        sub = commands.add_parser(command, parents=common, help=text, description=text + ".")
        sub.add_argument("name", help="name of the Rollout")
    _release_commands(commands, common)
    _override_command(commands, common)
    return parser


def _release_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: list[argparse.ArgumentParser],
) -> None:
    def target(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "release",
            type=_release_name,
            metavar="modelrelease/NAME",
            help="the ModelRelease: NAME or modelrelease/NAME",
        )

    approve = commands.add_parser(
        "approve",
        parents=common,
        help="approve a model release in a role (rollwise.dev/approve)",
        description="Approve a ModelRelease's version in one role (annotation "
        "rollwise.dev/approve). The operator's admission webhook records the approval with "
        "the user the API server authenticated, or refuses it (e.g. the user who set the "
        "version, a role the user does not hold, a second role by the same user); only "
        "recorded approvals count. Exits 1 when nothing was recorded.",
    )
    target(approve)
    approve.add_argument("--role", required=True, help="the role approved, e.g. security")
    approve.add_argument(
        "--version",
        default=None,
        help="the version approved (default: the release's spec.version); a different one is "
        "refused",
    )
    revoke = commands.add_parser(
        "revoke",
        parents=common,
        help="revoke a model release at any stage (rollwise.dev/revoke)",
        description="Revoke a ModelRelease at any stage (annotation rollwise.dev/revoke): "
        "traffic off the version, the alias back to the previous version, terminal. The "
        "webhook records who revoked it; without the webhook the operator still honours the "
        "unsigned request (revoking is always safe).",
    )
    target(revoke)
    revoke.add_argument("--reason", required=True, type=_reason, help="why (recorded)")
    waive = commands.add_parser(
        "waive",
        parents=common,
        help="waive a failing gate of a model release for a while (rollwise.dev/waive)",
        description="Waive a failing gate of a ModelRelease for a limited time (annotation "
        "rollwise.dev/waive): the gate counts as passed until the waiver expires. Gates: "
        "artifact-digest, sbom, policy-digest, freeze-window. The webhook records the waiver "
        "with the user; only recorded waivers count. Exits 1 when nothing was recorded.",
    )
    target(waive)
    waive.add_argument("--gate", required=True, help="the gate, e.g. sbom")
    waive.add_argument("--reason", required=True, type=_reason, help="why (recorded)")
    waive.add_argument(
        "--for",
        dest="duration",
        required=True,
        type=_waiver_duration,
        metavar="DURATION",
        help="how long the waiver lasts, e.g. 24h or 90m (the webhook allows at most 168h)",
    )


def _override_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: list[argparse.ArgumentParser],
) -> None:
    override = commands.add_parser(
        "override",
        parents=common,
        help="promote, hold or roll back a rollout or model release, recorded with identity",
        description="Override a Rollout's or a ModelRelease's course (annotation "
        "rollwise.dev/override): hold and rollback take effect at once; a promote past a "
        "failed or inconclusive analysis (or a failed gate) takes effect only once a second, "
        "distinct person confirms it with --confirm ID (rollwise.dev/confirm-override). The "
        "operator's admission webhook records who decided and who confirmed; approvals are "
        "never overridden. Exits 1 when nothing was recorded.",
    )
    override.add_argument(
        "target",
        type=_override_target,
        metavar="rollout/NAME|modelrelease/NAME",
        help="what to override",
    )
    override.add_argument(
        "--decision", choices=manual.OVERRIDE_DECISIONS, help="promote, hold or rollback"
    )
    override.add_argument("--reason", type=_reason, help="why (recorded)")
    override.add_argument(
        "--confirm", metavar="ID", default=None, help="confirm another person's promote override"
    )


def _symbols(stream: TextIO) -> Symbols:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return UNICODE if encoding.startswith("utf") else ASCII


def _cluster(args: argparse.Namespace) -> Cluster:
    return connect(
        getattr(args, "kubeconfig", None),
        getattr(args, "context", None),
        getattr(args, "namespace", None),
    )


def _get(args: argparse.Namespace, out: TextIO) -> None:
    cluster = _cluster(args)
    symbols = _symbols(out)
    release = args.kind in _RELEASE_NAMES
    if args.watch:
        watch = watch_release if release else watch_rollout
        watch(
            cluster,
            cluster.namespace,
            args.name,
            out=out,
            tty=out.isatty(),
            symbols=symbols,
            timeout=args.timeout,
        )
        return
    if release:
        obj = cluster.get_object(MODELRELEASES, cluster.namespace, args.name)
        events = cluster.object_events(MODELRELEASES, cluster.namespace, args.name)
        out.write(render_release(obj, events, datetime.now(UTC), symbols=symbols))
        return
    rollout = cluster.get_rollout(cluster.namespace, args.name)
    events = cluster.rollout_events(cluster.namespace, args.name)
    actual = cluster.actual_weight(rollout)
    out.write(render_rollout(rollout, events, datetime.now(UTC), actual=actual, symbols=symbols))


def _list(args: argparse.Namespace, out: TextIO) -> None:
    cluster = _cluster(args)
    namespace = None if args.all_namespaces else cluster.namespace
    where = "any namespace" if namespace is None else f'namespace "{namespace}"'
    now = datetime.now(UTC)
    rollouts = cluster.list_objects(ROLLOUTS, namespace)
    try:
        releases = cluster.list_objects(MODELRELEASES, namespace)
    except NotServed:
        releases = []
    if not rollouts and not releases:
        out.write(f"No rollouts found in {where}.\n")
        return
    lines: list[str] = []
    if rollouts:
        lines += render_rollout_table(rollouts, now, all_namespaces=namespace is None)
    else:
        lines.append(f"No rollouts found in {where}.")
    if releases:
        lines += ["", *render_release_table(releases, now, all_namespaces=namespace is None)]
    out.write("\n".join(lines) + "\n")


def _request(args: argparse.Namespace, kind: RequestKind, out: TextIO, err: TextIO) -> None:
    cluster = _cluster(args)
    rollout = cluster.get_rollout(cluster.namespace, args.name)
    warning = _request_warning(rollout, kind)
    request = manual.request_id(datetime.now(UTC))
    cluster.patch_rollout(cluster.namespace, args.name, manual.request_patch(kind, request))
    out.write(f"rollout.rollwise.dev/{args.name} {kind.value} requested (id {request})\n")
    if warning:
        err.write(f"warning: {warning}\n")


def _request_warning(rollout: dict[str, object], kind: RequestKind) -> str:
    """Why the operator will probably ignore the request, judging by the current status (the
    request is filed anyway: the status may be a moment old)."""
    status = rollout.get("status")
    if not isinstance(status, dict) or not status:
        return "the rollout has no status yet (is the Rollwise operator running?)"
    canary = status.get("canaryRevision")
    if kind is RequestKind.RETRY:
        if status.get("rolledBackRevision") or status.get("pauseReason") == "AnalysisInconclusive":
            return ""
        return (
            "nothing was rolled back and no analysis is inconclusive: the operator will "
            "ignore this retry"
        )
    if not canary:
        return f"no canary in progress: the operator will ignore this {kind.value}"
    return ""


def _pause(args: argparse.Namespace, paused: bool, out: TextIO) -> None:
    cluster = _cluster(args)
    rollout = cluster.get_rollout(cluster.namespace, args.name)
    spec = rollout.get("spec")
    before = bool(spec.get("paused")) if isinstance(spec, dict) else False
    word = "paused" if paused else "resumed"
    if before == paused:
        out.write(f"rollout.rollwise.dev/{args.name} {word} (no change)\n")
        return
    cluster.patch_rollout(cluster.namespace, args.name, manual.paused_patch(paused))
    out.write(f"rollout.rollwise.dev/{args.name} {word}\n")


# ------------------------------------------------------------------------------------------
# ModelRelease requests: write the request, then report what the admission webhook recorded
# (the patch's answer is the object as stored, after admission).

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


def _approve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cluster = _cluster(args)
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


def _revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cluster = _cluster(args)
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


def _waive(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cluster = _cluster(args)
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
    the status (a rolled-back or inconclusive revision; a failed gate)."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return False
    if kind == ROLLOUTS:
        spec = obj.get("spec")
        template = spec.get("template") if isinstance(spec, dict) else None
        revision = revision_of(template if isinstance(template, dict) else {})
        inconclusive = (
            status.get("canaryRevision") == revision
            and status.get("pauseReason") == "AnalysisInconclusive"
        )
        return status.get("rolledBackRevision") == revision or inconclusive
    gates = status.get("gates")
    return any(
        isinstance(g, dict) and g.get("name") != "approvals" and g.get("status") == "Failed"
        for g in (gates if isinstance(gates, list) else [])
    )


def _override(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    plural, name = args.target
    kind = "rollout" if plural == ROLLOUTS else "modelrelease"
    if args.confirm is not None and (args.decision or args.reason):
        raise CliError("--confirm takes no --decision or --reason: it confirms a recorded one")
    if args.confirm is None and not (args.decision and args.reason):
        raise CliError("override needs --decision and --reason, or --confirm ID")
    cluster = _cluster(args)
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


_RELEASE_COMMANDS = {
    "approve": _approve,
    "revoke": _revoke,
    "waive": _waive,
    "override": _override,
}


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Runs one command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.command == "get" and args.timeout is not None and not args.watch:
        parser.error("--timeout applies to --watch only")
    try:
        if args.command in _RELEASE_COMMANDS:
            return _RELEASE_COMMANDS[args.command](args, out, err)
        if args.command == "get":
            _get(args, out)
        elif args.command == "list":
            _list(args, out)
        elif args.command == "promote":
            kind = RequestKind.PROMOTE_FULL if args.full else RequestKind.PROMOTE
            _request(args, kind, out, err)
        elif args.command == "abort":
            _request(args, RequestKind.ABORT, out, err)
        elif args.command == "retry":
            _request(args, RequestKind.RETRY, out, err)
        elif args.command in ("pause", "resume"):
            _pause(args, args.command == "pause", out)
    except CliError as exc:
        out.flush()
        err.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        out.write("\n")
        return 130
    except Exception as exc:
        # A failure nobody anticipated (a bug, an odd answer from a proxy): still one line,
        # with the traceback one variable away for a bug report.
        if os.environ.get("ROLLWISE_DEBUG"):
            raise
        out.flush()
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        err.write(
            f"error: {type(exc).__name__}: {first} (set ROLLWISE_DEBUG=1 for the traceback)\n"
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``kubectl-rollwise``."""
    try:
        code = run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # ``kubectl rollwise get rollout x | head``: the reader left; nothing more to say, and
        # the interpreter's final flush must not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    if code == 130:
        # Interrupted (Ctrl-C), usually while watching: a watcher thread may sit in a blocking
        # read and the client library's exit hooks close its connections; the user asked to
        # stop, so stop now rather than wait on either.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(130)
    return code


if __name__ == "__main__":
    sys.exit(main())
