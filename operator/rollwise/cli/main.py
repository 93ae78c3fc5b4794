"""Entry point of ``kubectl-rollwise`` (``kubectl rollwise ...``): arguments and commands.

Each command is a few API calls (:mod:`rollwise.cli.kube`) around a pure view
(:mod:`rollwise.cli.render`) or a pure patch (:mod:`rollwise.cli.manual`). Every failure the
user can cause or meet (a wrong name, no CRD, an unreachable server, a bad kubeconfig) ends as
one ``error: ...`` line on stderr and exit code 1; bad arguments exit 2 with the usage, as
argparse does; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from rollwise.cli import manual
from rollwise.cli.kube import MODELRELEASES, ROLLOUTS, CliError, Cluster, NotServed, connect
from rollwise.cli.render import (
    ASCII,
    UNICODE,
    Symbols,
    render_release_table,
    render_rollout,
    render_rollout_table,
)
from rollwise.cli.watch import watch_rollout
from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.observations import RequestKind

PROG = "kubectl rollwise"

_ROLLOUT_NAMES = ("rollout", "rollouts", "rwr")

_DESCRIPTION = """\
Watch and steer Rollwise rollouts.

Manual operations write what the operator reads: promote, abort and retry set the annotation
rollwise.dev/<request> to a fresh request id (each id acts once); pause and resume set
spec.paused.
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
"""


def _duration(text: str) -> float:
    """``--timeout``: a duration like kubectl's (``30s``, ``5m``, ``1h``) or plain seconds."""
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_seconds(text)
    except InvalidDuration as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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
        help="show one rollout: steps, weights, analysis, conditions, events",
        description="Show one rollout: phase, revisions, steps (the current one marked), "
        "canary weight set and actually routed, the current analysis with values and "
        "thresholds, conditions and recent events.",
    )
    get.add_argument("kind", choices=_ROLLOUT_NAMES, metavar="rollout", help="'rollout'")
    get.add_argument("name", help="name of the Rollout")
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
    return parser


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
    if args.watch:
        watch_rollout(
            cluster,
            cluster.namespace,
            args.name,
            out=out,
            tty=out.isatty(),
            symbols=symbols,
            timeout=args.timeout,
        )
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


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Runs one command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.command == "get" and args.timeout is not None and not args.watch:
        parser.error("--timeout applies to --watch only")
    try:
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
    return code


if __name__ == "__main__":
    sys.exit(main())
