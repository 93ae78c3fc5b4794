"""The reporting commands: ``scoreboard`` and ``report``, their arguments and what they read.

:func:`add_report_commands` adds both to the plugin's parser (standard library only, like the
rest of the parser); :data:`REPORT_COMMANDS` runs them. Each reads the Rollouts and
ModelReleases in scope (and, for a report, the Kubernetes Events of the objects with
something recorded in the window) and hands them to the pure views
(:mod:`rollwise.cli.scoreboard`, :mod:`rollwise.cli.report`). Read-only: nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rollwise.cli.common import (
    MODELRELEASES,
    RELEASE_NAMES,
    ROLLOUT_NAMES,
    ROLLOUTS,
    CliError,
    NotServed,
)
from rollwise.cli.session import Session
from rollwise.core.durations import InvalidDuration, parse_seconds

if TYPE_CHECKING:
    from rollwise.cli.kube import Cluster

#: The defaults: a weekly scoreboard, a daily report, an attention band of 10% of the target.
SCOREBOARD_SINCE = "7d"
REPORT_SINCE = "24h"
DEFAULT_BAND = "10%"

_DAYS = re.compile(r"^(\d+)d(.*)$")


def parse_since(text: str) -> timedelta:
    """``--since``: a duration with days allowed (``7d``, ``1d12h``, ``24h``, ``90m``)."""
    raw = text.strip()
    days, rest = 0, raw
    match = _DAYS.match(raw)
    if match:
        days, rest = int(match.group(1)), match.group(2)
    try:
        seconds = days * 86400 + (parse_seconds(rest) if rest else 0.0)
    except InvalidDuration:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: expected e.g. 7d, 24h, 90m or 1d12h"
        ) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def parse_band(text: str) -> float:
    """``--attention-band``: ``10%`` or a fraction ``0.1`` of the target, from 0 to 1000%."""
    raw = text.strip()
    try:
        band = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a band (e.g. 10% or 0.1)") from None
    if not 0 <= band <= 10:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"{text!r}: the band must be between 0% and 1000%")
    return band


def add_report_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: list[argparse.ArgumentParser],
) -> None:
    board = commands.add_parser(
        "scoreboard",
        parents=common,
        help="KPIs against their targets: releases on track, worst deltas, open regressions",
        description="Score every release's KPIs against their targets, per namespace and "
        "overall: how many releases are on track, need attention or are off track, the KPIs "
        "with the worst deltas, and the regressions the post-promotion watch has open. Canary "
        "KPIs (while a canary runs) are the current step's analysis metrics, classified with "
        "--attention-band; watched KPIs (after promotion) carry the status the watch gave "
        "them. A release counts when a canary or watch runs or its status recorded anything "
        "within --since. Read from status only: nothing is queried or written.",
    )
    board.add_argument("-A", "--all-namespaces", action="store_true", help="score every namespace")
    board.add_argument(
        "--since",
        type=parse_since,
        default=parse_since(SCOREBOARD_SINCE),
        metavar="DURATION",
        help=f"releases with something recorded this recently (default {SCOREBOARD_SINCE})",
    )
    board.add_argument(
        "-o",
        "--output",
        choices=("wide", "json"),
        default=None,
        help="wide: also every release's KPIs; json: the board as numbers",
    )
    board.add_argument(
        "--attention-band",
        type=parse_band,
        default=parse_band(DEFAULT_BAND),
        metavar="BAND",
        help="a canary KPI within this share of its target (on the passing side) needs "
        f"attention, e.g. 10%% or 0.1 (default {DEFAULT_BAND.replace('%', '%%')})",
    )

    report = commands.add_parser(
        "report",
        parents=common,
        help="the decision report (--since 24h), or one release's record phase by phase",
        description="Without a release: the decision report of the last --since (default "
        f"{REPORT_SINCE}): decisions made, rollbacks, regressions (confirmed, false positives, "
        "open), the top critical items and the overrides with who made and confirmed them. "
        "With 'rollout NAME' or 'modelrelease NAME': that release's record phase by phase "
        "(stages, each canary step with its start and end, metrics with canary and control "
        "values, target and verdict, decisions, approvals, overrides, the post-promotion "
        "watch and the outcome). Built from status and Kubernetes Events, which keep a "
        "bounded tail: the report says what it covers.",
    )
    report.add_argument(
        "kind",
        nargs="?",
        choices=ROLLOUT_NAMES + RELEASE_NAMES,
        metavar="KIND",
        help="'rollout' or 'modelrelease' (short names as for get), with NAME",
    )
    report.add_argument("name", nargs="?", help="the release whose record to print")
    report.add_argument(
        "-A", "--all-namespaces", action="store_true", help="report on every namespace"
    )
    report.add_argument(
        "--since",
        type=parse_since,
        default=None,
        metavar="DURATION",
        help=f"the decision report's window (default {REPORT_SINCE})",
    )
    report.add_argument(
        "-o",
        "--output",
        choices=("text", "markdown", "json"),
        default="text",
        help="text (default), markdown or json",
    )


# --------------------------------------------------------------------------------------------
# Running them


def now() -> datetime:
    """The time the commands' windows end (a function, so that tests can fix it)."""
    return datetime.now(UTC)


def _objects(cluster: Cluster, namespace: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The Rollouts and ModelReleases in scope (ModelReleases only where their CRD is)."""
    found = [(ROLLOUTS, obj) for obj in cluster.list_objects(ROLLOUTS, namespace)]
    with contextlib.suppress(NotServed):
        found += [(MODELRELEASES, obj) for obj in cluster.list_objects(MODELRELEASES, namespace)]
    return found


def _scoreboard(args: argparse.Namespace, s: Session) -> int:
    import json  # noqa: PLC0415

    from rollwise.cli.scoreboard import build_board  # noqa: PLC0415
    from rollwise.cli.scoreboard_render import board_document, render_board  # noqa: PLC0415

    cluster = s.cluster(args)
    namespace = None if args.all_namespaces else cluster.namespace
    board = build_board(
        _objects(cluster, namespace),
        now(),
        since=args.since,
        band=args.attention_band,
    )
    if args.output == "json":
        s.out.write(json.dumps(board_document(board), indent=2) + "\n")
    else:
        s.out.write(render_board(board, wide=args.output == "wide"))
    return 0


def _events(cluster: Cluster, plural: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = obj.get("metadata") or {}
    return cluster.object_events(plural, meta.get("namespace", ""), meta["name"], meta.get("uid"))


def _report(args: argparse.Namespace, s: Session) -> int:
    from rollwise.cli import report  # noqa: PLC0415
    from rollwise.cli.report_render import render_fleet, render_release_report  # noqa: PLC0415
    from rollwise.cli.scoreboard import status_times  # noqa: PLC0415

    if args.kind is not None and args.name is None:
        raise CliError(f"report {args.kind} needs the NAME of the release")
    if args.kind is not None and (args.since is not None or args.all_namespaces):
        raise CliError("--since and -A apply to the decision report, not to one release's")
    cluster = s.cluster(args)
    at = now()
    render: Callable[..., str]
    if args.kind is not None:
        plural = MODELRELEASES if args.kind in RELEASE_NAMES else ROLLOUTS
        obj = cluster.get_object(plural, cluster.namespace, args.name)
        subject = report.Subject(plural, obj, _events(cluster, plural, obj))
        doc = report.release_report(subject, at)
        render = render_release_report
    else:
        since = args.since or parse_since(REPORT_SINCE)
        namespace = None if args.all_namespaces else cluster.namespace
        subjects = []
        for plural, obj in _objects(cluster, namespace):
            # Only an object whose status recorded something in the window can have an
            # Event in it (the event log keeps the newest entries): the others are read
            # from status alone, and cost no request.
            times = status_times(obj.get("status") or {})
            recent = bool(times) and max(times) >= at - since
            events = _events(cluster, plural, obj) if recent else []
            subjects.append(report.Subject(plural, obj, events))
        doc = report.fleet_report(subjects, at, since)
        render = render_fleet
    if args.output == "json":
        s.out.write(report.as_json(doc))
    else:
        s.out.write(render(doc, markdown=args.output == "markdown"))
    return 0


REPORT_COMMANDS: dict[str, Callable[[argparse.Namespace, Session], int]] = {
    "scoreboard": _scoreboard,
    "report": _report,
}

__all__ = [
    "REPORT_COMMANDS",
    "add_report_commands",
    "parse_band",
    "parse_since",
]
