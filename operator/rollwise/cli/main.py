"""Entry point of ``kubectl-rollwise`` (``kubectl rollwise ...``): arguments and commands.

Each command is a few API calls (:mod:`rollwise.cli.kube`) around a pure view
(:mod:`rollwise.cli.render`, :mod:`rollwise.cli.tree`, :mod:`rollwise.cli.status`,
:mod:`rollwise.cli.explain`) or a pure
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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from rollwise.cli.common import (
    MODELRELEASES,
    RELEASE_NAMES,
    ROLLOUTS,
    CliError,
    NotServed,
)
from rollwise.cli.parser import build_parser
from rollwise.cli.release_commands import (
    RELEASE_COMMANDS,
)
from rollwise.cli.report_commands import REPORT_COMMANDS
from rollwise.cli.session import Connector, Session

if TYPE_CHECKING:
    from rollwise.cli.kube import Cluster
    from rollwise.core.observations import RequestKind


def _get(args: argparse.Namespace, s: Session) -> None:
    cluster = s.cluster(args)
    out, display = s.out, s.display
    release = args.kind in RELEASE_NAMES
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


def _explain(args: argparse.Namespace, s: Session) -> None:
    from rollwise.cli.explain import explain_document, render_explain  # noqa: PLC0415

    cluster = s.cluster(args)
    plural = MODELRELEASES if args.kind in RELEASE_NAMES else ROLLOUTS
    obj = cluster.get_object(plural, cluster.namespace, args.name)
    if args.output == "json":
        s.out.write(json.dumps(explain_document(obj, plural), indent=2) + "\n")
        return
    display = s.display
    s.out.write(
        render_explain(
            obj,
            plural,
            datetime.now(UTC),
            symbols=display.symbols,
            palette=display.palette,
            width=display.columns(),
        )
    )


def _list(args: argparse.Namespace, s: Session) -> None:
    from rollwise.cli.render import render_rollout_table  # noqa: PLC0415

    cluster = s.cluster(args)
    out, palette = s.out, s.display.palette
    namespace = None if args.all_namespaces else cluster.namespace
    where = "any namespace" if namespace is None else f'namespace "{namespace}"'
    every = namespace is None
    wide = args.output == "wide"
    now = datetime.now(UTC)
    only_releases = args.kind in RELEASE_NAMES
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
        lines += render_rollout_table(
            rollouts, now, all_namespaces=every, palette=palette, wide=wide
        )
    elif not only_releases:
        lines.append(f"No rollouts found in {where}.")
    if releases:
        from rollwise.cli.render_release import render_release_table  # noqa: PLC0415

        table = render_release_table(
            releases, now, all_namespaces=every, palette=palette, wide=wide
        )
        lines += [*([""] if lines else []), *table]
    out.write("\n".join(lines) + "\n")


def _status(args: argparse.Namespace, s: Session) -> int:
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


def _request(args: argparse.Namespace, kind: RequestKind, s: Session) -> None:
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


def _pause(args: argparse.Namespace, paused: bool, s: Session) -> None:
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


def _change(args: argparse.Namespace, s: Session) -> None:
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


def _dispatch(args: argparse.Namespace, s: Session) -> int:
    if args.command in RELEASE_COMMANDS:
        return RELEASE_COMMANDS[args.command](args, s)
    if args.command in REPORT_COMMANDS:
        return REPORT_COMMANDS[args.command](args, s)
    if args.command == "status":
        return _status(args, s)
    if args.command == "get":
        _get(args, s)
    elif args.command == "explain":
        _explain(args, s)
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
    from rollwise.cli.connect import connect  # noqa: PLC0415 - the client, only when connecting

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
    session = Session(
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
