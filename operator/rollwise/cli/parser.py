"""The plugin's argument parser (:func:`build_parser`): every command, its flags and its
help, built from the standard library alone so that ``--help`` and a bad argument cost no
more than Python's start-up."""

from __future__ import annotations

import argparse

from rollwise.cli.common import (
    MODELRELEASES,
    OVERRIDE_DECISIONS,
    RELEASE_NAMES,
    ROLLOUT_NAMES,
    ROLLOUTS,
)
from rollwise.cli.report_commands import add_report_commands
from rollwise.core.durations import InvalidDuration, parse_seconds

PROG = "kubectl rollwise"


_ROLLOUT_NAMES = ROLLOUT_NAMES


_RELEASE_NAMES = RELEASE_NAMES


_DESCRIPTION = """\
Watch and steer Rollwise rollouts and model releases.

set image, undo and restart change what a Rollout runs: set image and undo write
spec.template (undo back to the stable revision drops the canary at once); restart restarts
the stable revision's pods in place (a rolling restart of its Deployment, no new revision).
status prints one line and exits 0 when Healthy, 1 when Degraded, 3 when not finished.
explain prints the operator's decision on a canary (expand, hold or rollback), its reasons,
the actions it requires and the analysis evidence behind it.

Manual operations write what the operator reads: promote, abort and retry set the annotation
rollwise.dev/<request> to a fresh request id (each id acts once); pause and resume set
spec.paused. On a ModelRelease, approve, revoke and waive write a JSON request
(rollwise.dev/approve, /revoke, /waive) that the operator's admission webhook records with
the user the API server authenticated; the plugin then prints what was recorded (approve
also approves a Rollout's approval step: approve rollout/NAME --role R). override
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
  kubectl rollwise promote demo            # skip the current pause or step (blue-green: switch)
  kubectl rollwise promote demo --full     # straight to 100%, skipping every check
  kubectl rollwise abort demo              # traffic back to stable, canary scaled down
  kubectl rollwise retry demo              # try a rolled-back revision again
  kubectl rollwise pause demo / resume demo
  kubectl rollwise explain rollout demo    # the decision on the canary and its evidence
  kubectl rollwise explain mr fraud-detector-7 -o json
  kubectl rollwise get modelrelease fraud-detector-7 --watch
  kubectl rollwise approve modelrelease/fraud-detector-7 --role security
  kubectl rollwise approve rollout/checkout --role product
  kubectl rollwise waive mr/fraud-detector-7 --gate sbom --reason "CVE triaged" --for 24h
  kubectl rollwise revoke fraud-detector-7 --reason "wrong training data"
  kubectl rollwise override rollout/demo --decision hold --reason "checking a dashboard"
  kubectl rollwise override rollout/demo --confirm ID   # a second person confirms a promote
  kubectl rollwise scoreboard -A --since 7d  # KPIs against targets, open regressions
  kubectl rollwise report --since 24h -o markdown       # decisions, rollbacks, overrides
  kubectl rollwise report rollout demo -o markdown      # one release's record
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


def _approve_target(text: str) -> tuple[str, str]:
    """What ``approve`` approves: a ModelRelease (``NAME``, ``modelrelease/NAME``) or a
    Rollout at an approval step (``rollout/NAME``): (plural, name)."""
    kind, sep, name = text.rpartition("/")
    if sep and name and kind.lower().removesuffix(".rollwise.dev") in _ROLLOUT_NAMES:
        return ROLLOUTS, name
    try:
        return MODELRELEASES, _release_name(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not rollout/NAME nor a ModelRelease (NAME or modelrelease/NAME)"
        ) from None


def _step_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step number (1, 2, ...)")
    return number


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
    listing.add_argument(
        "-o",
        "--output",
        choices=("wide",),
        default=None,
        help="wide: also the DECISION column (the canary's action/confidence)",
    )

    explain = commands.add_parser(
        "explain",
        parents=common,
        help="why the canary expands, holds or rolls back: the decision and its evidence",
        description="Show the operator's decision on a Rollout's or ModelRelease's canary "
        "(status.decision): the action (and in advisory mode what auto mode would do), the "
        "confidence, the compare score, each reason with its severity, metric, observed "
        "value and threshold, and the required actions with priority and due time. Then the "
        "evidence of the current step's analysis: threshold metrics' last values and sample "
        "counts, compare metrics' samples, medians, effect sizes and p-values, and SLO burn "
        "rates by window and pair. Exits 0 when there is no decision yet (no canary in "
        "progress, or an operator that records none).",
    )
    explain.add_argument(
        "kind",
        choices=_ROLLOUT_NAMES + _RELEASE_NAMES,
        metavar="KIND",
        help="'rollout' (rollouts, rwr) or 'modelrelease' (modelreleases, mr, mrel)",
    )
    explain.add_argument("name", help="name of the Rollout or ModelRelease")
    explain.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text (default) or json: the decision as stored and the evidence as numbers",
    )

    promote = commands.add_parser(
        "promote",
        parents=common,
        help="skip the current step (rollwise.dev/promote), or go to 100%% with --full",
        description="Ask the operator to skip the current pause, weight or analysis step "
        "(annotation rollwise.dev/promote). With --full, promote the canary straight to "
        "100%%, skipping every remaining step and check (rollwise.dev/promote-full; a Warning "
        "event records it). On a blue-green Rollout awaiting promotion, promote means switch: "
        "the preview is scaled to full and the active Service's selector moves to it.",
    )
    promote.add_argument("name", help="name of the Rollout")
    promote.add_argument(
        "--full", action="store_true", help="skip every remaining step and analysis"
    )
    for command, annotation, text in (
        (
            "abort",
            "rollwise.dev/abort",
            "roll the canary back: traffic to stable, canary down (blue-green: drop the preview)",
        ),
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
    add_report_commands(commands, common)
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
        help="approve a model release, or a rollout's approval step, in a role "
        "(rollwise.dev/approve)",
        description="Approve a ModelRelease's version, or the canary revision of a Rollout at "
        "an approval step (rollout/NAME), in one role (annotation rollwise.dev/approve). The "
        "operator's admission webhook records the approval with the user the API server "
        "authenticated, or refuses it (e.g. the user who set the version or changed the "
        "template, a role the user does not hold, a second role by the same user); only "
        "recorded approvals count. Exits 1 when nothing was recorded.",
    )
    approve.add_argument(
        "target",
        type=_approve_target,
        metavar="modelrelease/NAME|rollout/NAME",
        help="the ModelRelease (NAME or modelrelease/NAME) or the Rollout (rollout/NAME)",
    )
    approve.add_argument("--role", required=True, help="the role approved, e.g. security")
    approve.add_argument(
        "--version",
        default=None,
        help="a ModelRelease's version approved (default: the release's spec.version); a "
        "different one is refused",
    )
    approve.add_argument(
        "--step",
        type=_step_number,
        default=None,
        help="a Rollout's approval step approved, 1-based as get shows it (default: the step "
        "the canary is at, else the next approval step)",
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
        "artifact-digest, sbom, policy-digest, model-card, security-decision, signature, "
        "attestation, revalidate-by, freeze-window. The webhook records the waiver "
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
        "failed or inconclusive analysis (or a failed gate), or of a new revision a confirmed "
        "post-promotion regression holds (RegressionHold: the hold lifts and the revision "
        "goes through its canary), takes effect only once a second, distinct person confirms "
        "it with --confirm ID (rollwise.dev/confirm-override). The "
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
