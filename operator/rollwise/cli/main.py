"""Entry point of ``kubectl-rollwise`` (``kubectl rollwise ...``): arguments and commands.

Each command is a few API calls (:mod:`rollwise.cli.kube`) around a pure view
(:mod:`rollwise.cli.render`, :mod:`rollwise.cli.tree`, :mod:`rollwise.cli.status`) or a pure
change (:mod:`rollwise.cli.manual`, :mod:`rollwise.cli.revisions`). Every failure the user
can cause or meet (a wrong name, no CRD, an unreachable server, a bad kubeconfig, no earlier
revision) ends as one ``error: ...`` line on stderr and exit code 1; bad arguments exit 2
with the usage, as argparse does; Ctrl-C exits 130 without a traceback. ``status`` has exit
codes of its own for scripts (:mod:`rollwise.cli.status`).

This module imports only the standard library and :mod:`rollwise.cli.common` at start: each
command imports what it needs when it runs (the ``kubernetes`` client, the core's models,
the ModelRelease views), so ``--help`` and argument errors answer at once and a command pays
for its own imports alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from rollwise.cli.common import (
    MODELRELEASES,
    OVERRIDE_DECISIONS,
    RELEASE_NAMES,
    ROLLOUT_NAMES,
    ROLLOUTS,
    CliError,
    NotServed,
)
from rollwise.core.durations import InvalidDuration, parse_seconds

if TYPE_CHECKING:
    from rollwise.cli.display import Display
    from rollwise.cli.kube import Cluster
    from rollwise.core.observations import RequestKind

PROG = "kubectl rollwise"

_ROLLOUT_NAMES = ROLLOUT_NAMES
_RELEASE_NAMES = RELEASE_NAMES

#: Makes the cluster connection from ``--kubeconfig``, ``--context`` and ``-n``
#: (:func:`rollwise.cli.kube.connect`; tests pass a fake).
Connector = Callable[[str | None, str | None, str | None], "Cluster"]

_DESCRIPTION = """\
Watch and steer Rollwise rollouts and model releases.

set image, undo and restart change what a Rollout runs: set image and undo write
spec.template (undo back to the stable revision drops the canary at once); restart restarts
the stable revision's pods in place (a rolling restart of its Deployment, no new revision).
status prints one line and exits 0 when Healthy, 1 when Degraded, 3 when not finished.

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
  kubectl rollwise set image demo app=ghcr.io/acme/web:1.2
  kubectl rollwise status demo --watch --timeout 10m   # exit 0 Healthy, 1 Degraded, 3 timeout
  kubectl rollwise undo demo                # back to the stable (or previous) revision
  kubectl rollwise restart demo             # restart the stable pods, no canary
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
    """``-n``, ``--kubeconfig``, ``--context`` and ``--color``, accepted before or after the
    command."""
    default = argparse.SUPPRESS if suppress else None
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default=argparse.SUPPRESS if suppress else "auto",
        help="colour: auto (on a terminal, unless NO_COLOR is set), always or never",
    )
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
        help="list rollouts and model releases",
        description="List Rollouts, then ModelReleases when their CRD is installed; "
        "'list rollouts' or 'list modelreleases' lists one kind.",
    )
    listing.add_argument(
        "kind",
        nargs="?",
        choices=_ROLLOUT_NAMES + _RELEASE_NAMES,
        metavar="rollouts|modelreleases",
        help="only this kind (short names as for get)",
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
    _change_commands(commands, common)
    _release_commands(commands, common)
    _override_command(commands, common)
    return parser


def _image_pair(text: str) -> tuple[str, str]:
    """``CONTAINER=IMAGE`` (``*=IMAGE``: every container)."""
    from rollwise.cli.revisions import TemplateError, parse_image_pair  # noqa: PLC0415

    try:
        return parse_image_pair(text)
    except TemplateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _change_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: list[argparse.ArgumentParser],
) -> None:
    setter = commands.add_parser(
        "set",
        help="set a rollout's container images (set image)",
        description="Change a Rollout's pod template.",
    )
    what = setter.add_subparsers(dest="set_what", metavar="WHAT", required=True)
    image = what.add_parser(
        "image",
        parents=common,
        help="set container images: a new revision, rolled out through the canary steps",
        description="Set the image of containers of the Rollout's pod template "
        "(spec.template; containers and init containers, by name; '*' for all). The new "
        "template is a new revision, which the operator takes through the canary steps.",
    )
    image.add_argument("name", help="name of the Rollout")
    image.add_argument(
        "images",
        nargs="+",
        type=_image_pair,
        metavar="CONTAINER=IMAGE",
        help="e.g. app=ghcr.io/acme/web:1.2",
    )
    undo = commands.add_parser(
        "undo",
        parents=common,
        help="roll the template back to an earlier revision",
        description="Write an earlier revision's pod template back into spec.template, read "
        "from that revision's Deployment. Default: the stable revision while a canary runs "
        "or after a rollback (the operator drops the canary at once: stable serves "
        "everything), else the newest earlier revision that still has a Deployment (which "
        "then goes through the canary steps).",
    )
    undo.add_argument("name", help="name of the Rollout")
    undo.add_argument(
        "--to-revision",
        metavar="REV",
        default=None,
        help="the revision to go back to (its id, or enough of it to tell it apart)",
    )
    restart = commands.add_parser(
        "restart",
        parents=common,
        help="restart the stable revision's pods in place (no new revision, no canary)",
        description="Restart the pods of the stable revision: its Deployment gets the pod "
        "template annotation kubectl.kubernetes.io/restartedAt (as kubectl rollout restart "
        "writes it) and replaces its pods in a rolling update, within its maxSurge and "
        "maxUnavailable. No new revision, no canary, no analysis; a running canary's pods "
        "are left alone.",
    )
    restart.add_argument("name", help="name of the Rollout")
    status = commands.add_parser(
        "status",
        parents=common,
        help="one status line; exit 0 Healthy, 1 Degraded, 3 not finished (for scripts)",
        description="Print the Rollout's phase and message on one line. Exit code: 0 "
        "Healthy, 1 Degraded (rolled back, aborted, progress deadline exceeded, invalid "
        "spec), 3 not finished (Progressing, Paused, or a status the operator has not "
        "brought up to the current spec yet). With --watch, print a line each time it "
        "changes until the Rollout is Healthy or Degraded; a Paused rollout is waited for "
        "(a pause ends on its own or when promoted), up to --timeout.",
    )
    status.add_argument("name", help="name of the Rollout")
    status.add_argument("-w", "--watch", action="store_true", help="wait until Healthy or Degraded")
    status.add_argument(
        "--timeout",
        type=_duration,
        default=None,
        help="with --watch: give up after this long, exit code 3 (e.g. 5m; default: none)",
    )


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
        "--decision", choices=OVERRIDE_DECISIONS, help="promote, hold or rollback"
    )
    override.add_argument("--reason", type=_reason, help="why (recorded)")
    override.add_argument(
        "--confirm", metavar="ID", default=None, help="confirm another person's promote override"
    )


@dataclass(frozen=True)
class _Session:
    """One run of the plugin: where it writes, how that looks, and how it connects."""

    out: TextIO
    err: TextIO
    display: Display
    connector: Connector

    def cluster(self, args: argparse.Namespace) -> Cluster:
        return self.connector(
            getattr(args, "kubeconfig", None),
            getattr(args, "context", None),
            getattr(args, "namespace", None),
        )


def _get(args: argparse.Namespace, s: _Session) -> None:
    cluster = s.cluster(args)
    out, display = s.out, s.display
    release = args.kind in _RELEASE_NAMES
    if args.watch:
        from rollwise.cli.watch import watch_release, watch_rollout  # noqa: PLC0415

        watch = watch_release if release else watch_rollout
        watch(cluster, cluster.namespace, args.name, out=out, display=display, timeout=args.timeout)
        return
    if release:
        from rollwise.cli.render_release import render_release  # noqa: PLC0415

        obj = cluster.get_object(MODELRELEASES, cluster.namespace, args.name)
        uid = (obj.get("metadata") or {}).get("uid")
        events = cluster.object_events(MODELRELEASES, cluster.namespace, args.name, uid)
        out.write(
            render_release(
                obj,
                events,
                datetime.now(UTC),
                symbols=display.symbols,
                palette=display.palette,
                width=display.columns(),
            )
        )
        return
    from rollwise.cli.watch import rollout_view  # noqa: PLC0415

    rollout = cluster.get_rollout(cluster.namespace, args.name)
    out.write(rollout_view(cluster, rollout, display)[0])


def _list(args: argparse.Namespace, s: _Session) -> None:
    from rollwise.cli.render import render_rollout_table  # noqa: PLC0415

    cluster = s.cluster(args)
    out, palette = s.out, s.display.palette
    namespace = None if args.all_namespaces else cluster.namespace
    where = "any namespace" if namespace is None else f'namespace "{namespace}"'
    every = namespace is None
    now = datetime.now(UTC)
    only_releases = args.kind in _RELEASE_NAMES
    rollouts = [] if only_releases else cluster.list_objects(ROLLOUTS, namespace)
    releases: list[dict[str, Any]] = []
    if only_releases:
        releases = cluster.list_objects(MODELRELEASES, namespace)
        if not releases:
            out.write(f"No model releases found in {where}.\n")
            return
    elif args.kind is None:
        try:
            releases = cluster.list_objects(MODELRELEASES, namespace)
        except NotServed:
            releases = []
    if not rollouts and not releases:
        out.write(f"No rollouts found in {where}.\n")
        return
    lines: list[str] = []
    if rollouts:
        lines += render_rollout_table(rollouts, now, all_namespaces=every, palette=palette)
    elif not only_releases:
        lines.append(f"No rollouts found in {where}.")
    if releases:
        from rollwise.cli.render_release import render_release_table  # noqa: PLC0415

        table = render_release_table(releases, now, all_namespaces=every, palette=palette)
        lines += [*([""] if lines else []), *table]
    out.write("\n".join(lines) + "\n")


def _status(args: argparse.Namespace, s: _Session) -> int:
    from rollwise.cli.status import NOT_DONE, rollout_state  # noqa: PLC0415

    cluster = s.cluster(args)
    if not args.watch:
        state = rollout_state(cluster.get_rollout(cluster.namespace, args.name))
        s.out.write(state.line(s.display.palette) + "\n")
        return state.code
    from rollwise.cli.watch import watch_status  # noqa: PLC0415

    state = watch_status(
        cluster,
        cluster.namespace,
        args.name,
        out=s.out,
        display=s.display,
        timeout=args.timeout,
    )
    if state.code == NOT_DONE:
        s.out.flush()
        s.err.write(
            f'error: timed out after {args.timeout:g}s waiting for rollout "{args.name}" to '
            f"be Healthy ({state.phase})\n"
        )
    return state.code


def _request(args: argparse.Namespace, kind: RequestKind, s: _Session) -> None:
    from rollwise.cli import manual  # noqa: PLC0415

    cluster = s.cluster(args)
    rollout = cluster.get_rollout(cluster.namespace, args.name)
    warning = _request_warning(rollout, kind)
    request = manual.request_id(datetime.now(UTC))
    cluster.patch_rollout(cluster.namespace, args.name, manual.request_patch(kind, request))
    s.out.write(f"rollout.rollwise.dev/{args.name} {kind.value} requested (id {request})\n")
    if warning:
        s.err.write(f"warning: {warning}\n")


def _request_warning(rollout: dict[str, object], kind: RequestKind) -> str:
    """Why the operator will probably ignore the request, judging by the current status (the
    request is filed anyway: the status may be a moment old)."""
    status = rollout.get("status")
    if not isinstance(status, dict) or not status:
        return "the rollout has no status yet (is the Rollwise operator running?)"
    canary = status.get("canaryRevision")
    if kind.value == "retry":
        if status.get("rolledBackRevision") or status.get("pauseReason") == "AnalysisInconclusive":
            return ""
        return (
            "nothing was rolled back and no analysis is inconclusive: the operator will "
            "ignore this retry"
        )
    if not canary:
        return f"no canary in progress: the operator will ignore this {kind.value}"
    return ""


def _pause(args: argparse.Namespace, paused: bool, s: _Session) -> None:
    from rollwise.cli import manual  # noqa: PLC0415

    cluster = s.cluster(args)
    rollout = cluster.get_rollout(cluster.namespace, args.name)
    spec = rollout.get("spec")
    before = bool(spec.get("paused")) if isinstance(spec, dict) else False
    word = "paused" if paused else "resumed"
    if before == paused:
        s.out.write(f"rollout.rollwise.dev/{args.name} {word} (no change)\n")
        return
    cluster.patch_rollout(cluster.namespace, args.name, manual.paused_patch(paused))
    s.out.write(f"rollout.rollwise.dev/{args.name} {word}\n")


def _change(args: argparse.Namespace, s: _Session) -> None:
    """``set image``, ``undo`` and ``restart``."""
    from rollwise.cli import edit  # noqa: PLC0415

    cluster = s.cluster(args)
    symbols = s.display.symbols
    if args.command == "set":
        edit.set_image(cluster, args.name, list(args.images), s.out, symbols)
    elif args.command == "undo":
        edit.undo(
            cluster, args.name, to_revision=args.to_revision, out=s.out, err=s.err, symbols=symbols
        )
    else:
        edit.restart(cluster, args.name, s.out)


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


def _approve(args: argparse.Namespace, s: _Session) -> int:
    from rollwise.cli import manual, records  # noqa: PLC0415

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


def _revoke(args: argparse.Namespace, s: _Session) -> int:
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


def _waive(args: argparse.Namespace, s: _Session) -> int:
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
    the status (a rolled-back or inconclusive revision; a failed gate)."""
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
        return status.get("rolledBackRevision") == revision or inconclusive
    gates = status.get("gates")
    return any(
        isinstance(g, dict) and g.get("name") != "approvals" and g.get("status") == "Failed"
        for g in (gates if isinstance(gates, list) else [])
    )


def _override(args: argparse.Namespace, s: _Session) -> int:
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


_RELEASE_COMMANDS = {
    "approve": _approve,
    "revoke": _revoke,
    "waive": _waive,
    "override": _override,
}


def _dispatch(args: argparse.Namespace, s: _Session) -> int:
    if args.command in _RELEASE_COMMANDS:
        return _RELEASE_COMMANDS[args.command](args, s)
    if args.command == "status":
        return _status(args, s)
    if args.command == "get":
        _get(args, s)
    elif args.command == "list":
        _list(args, s)
    elif args.command in ("set", "undo", "restart"):
        _change(args, s)
    elif args.command in ("pause", "resume"):
        _pause(args, args.command == "pause", s)
    else:
        from rollwise.core.observations import RequestKind  # noqa: PLC0415

        kind = RequestKind(args.command)
        if kind is RequestKind.PROMOTE and args.full:
            kind = RequestKind.PROMOTE_FULL
        _request(args, kind, s)
    return 0


def _connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    from rollwise.cli.kube import connect  # noqa: PLC0415 - the client, only when connecting

    return connect(kubeconfig, context, namespace)


def run(
    argv: Sequence[str],
    out: TextIO,
    err: TextIO,
    *,
    connector: Connector | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Runs one command; returns the exit code. ``connector`` makes the cluster connection
    (default: from the kubeconfig), ``environ`` is the environment (default: the process's;
    ``NO_COLOR`` and ``TERM`` matter)."""
    from rollwise.cli.display import display_for  # noqa: PLC0415

    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.command in ("get", "status") and args.timeout is not None and not args.watch:
        parser.error("--timeout applies to --watch only")
    env = os.environ if environ is None else environ
    session = _Session(
        out=out,
        err=err,
        display=display_for(out, env, getattr(args, "color", "auto")),
        connector=connector or _connect,
    )
    try:
        return _dispatch(args, session)
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
        if env.get("ROLLWISE_DEBUG"):
            raise
        out.flush()
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        err.write(
            f"error: {type(exc).__name__}: {first} (set ROLLWISE_DEBUG=1 for the traceback)\n"
        )
        return 1


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
