"""``kubectl rollwise get rollout|modelrelease NAME --watch``: a live view of one object; and
``kubectl rollwise status NAME --watch``: a Rollout's status line until it is final.

A background thread holds a real watch on the object (field selector ``metadata.name``,
watched again when the server ends the stream, re-read after 410 Gone) and hands each new
version of the object to the main thread through a queue. The main thread redraws at least
every second, so ages and pause countdowns move between changes, and stops at ``--timeout``.

On a terminal each frame replaces the previous one (ANSI home and clear). When the output is
not a terminal (a pipe, a log file) a frame is printed only when something it shows changed
other than the passing of time (the object, its events, a Rollout's actual weight), each new
frame after a blank line: a log then reads as the history of the rollout, not as one frame a
second.

``status --watch`` prints a line each time the line changes, and returns once the Rollout is
Healthy or Degraded, or at ``--timeout`` (:mod:`rollwise.cli.status`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from rollwise.adapters.errors import KubeError
from rollwise.cli.display import Display
from rollwise.cli.kube import (
    KIND_WORDS,
    MODELRELEASES,
    ROLLOUTS,
    CliError,
    Cluster,
    Workloads,
)
from rollwise.cli.render import ActualWeight, render_rollout
from rollwise.cli.status import RolloutState, rollout_state
from rollwise.cli.tree import build_tree
from rollwise.core.spec import RolloutSpec
from rollwise.core.templates import rollout_template_keys
from rollwise.core.validation import parse_rollout_spec

#: Seconds between redraws without a change (ages, countdowns).
REFRESH_SECONDS = 1.0

#: Seconds one watch request stays open before the server ends it and it is renewed.
STREAM_SECONDS = 60

CLEAR = "\x1b[H\x1b[2J"

_Item = tuple[str, Any]


class _Watcher(threading.Thread):
    """Feeds ``("object", dict)``, ``("deleted", dict)`` and ``("error", exc)`` to ``out``."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        version: str,
        out: queue.Queue[_Item],
        *,
        plural: str = ROLLOUTS,
    ) -> None:
        super().__init__(name=f"watch-{name}", daemon=True)
        self.cluster = cluster
        self.plural = plural
        self.namespace = namespace
        self.name_ = name
        self.version = version
        self.out = out
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._stream_once()
                except KubeError as exc:
                    if exc.status != 410:
                        word = KIND_WORDS[self.plural]
                        raise self.cluster.api_error(exc, f'watch {word} "{self.name_}"') from exc
                    # Too old to resume from: read the object again and watch from there.
                    obj = self.cluster.get_object(self.plural, self.namespace, self.name_)
                    self.version = str(obj.get("metadata", {}).get("resourceVersion", ""))
                    self.out.put(("object", obj))
        except CliError as exc:
            self.out.put(("error", exc))
        except Exception as exc:  # a bug or an unexpected client failure: still one line
            self.out.put(("error", CliError(f"watch failed: {type(exc).__name__}: {exc}")))

    def _stream_once(self) -> None:
        for kind, obj in self.cluster.watch_object(
            self.plural, self.namespace, self.name_, self.version, STREAM_SECONDS
        ):
            if self.stopping.is_set():
                return
            version = obj.get("metadata", {}).get("resourceVersion")
            if version:
                self.version = str(version)
            if kind == "DELETED":
                self.out.put(("deleted", obj))
                return
            if kind in ("ADDED", "MODIFIED"):
                self.out.put(("object", obj))


def _versions(objects: list[dict[str, Any]] | None) -> tuple[object, ...]:
    return tuple(o.get("metadata", {}).get("resourceVersion") for o in objects or [])


def _change_key(
    obj: dict[str, Any],
    events: list[dict[str, Any]],
    actual: ActualWeight | None,
    workloads: Workloads | None = None,
) -> tuple[object, ...]:
    version = obj.get("metadata", {}).get("resourceVersion")
    seen = tuple(
        (
            e.get("metadata", {}).get("uid"),
            e.get("count"),
            e.get("lastTimestamp"),
            (e.get("series") or {}).get("count"),
        )
        for e in events
    )
    running: tuple[object, ...] = ()
    if workloads is not None:
        running = (
            _versions(workloads.deployments),
            _versions(workloads.replica_sets),
            _versions(workloads.pods),
        )
    return version, seen, actual, running


#: A frame of the view and the key that changes when something in it changed other than time.
Frame = Callable[[dict[str, Any]], tuple[str, tuple[object, ...]]]


def watch_rollout(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    out: TextIO,
    display: Display,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Draws the Rollout until ``timeout`` seconds passed (None: until interrupted).

    Raises :class:`CliError` when the Rollout is deleted or the API server fails."""

    def frame(rollout: dict[str, Any]) -> tuple[str, tuple[object, ...]]:
        text, key = rollout_view(cluster, rollout, display)
        return text, key

    _watch(
        cluster,
        ROLLOUTS,
        namespace,
        name,
        frame,
        out=out,
        tty=display.tty,
        timeout=timeout,
        clock=clock,
    )


def rollout_view(
    cluster: Cluster, rollout: dict[str, Any], display: Display
) -> tuple[str, tuple[object, ...]]:
    """The ``get rollout`` view of ``rollout`` with what the cluster says around it (events,
    the router's weight, the revisions' Deployments, ReplicaSets and pods), and the key that
    changes when any of it changed."""
    meta = rollout.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or cluster.namespace), str(meta.get("name"))
    events = cluster.object_events(ROLLOUTS, namespace, name, meta.get("uid"))
    actual = cluster.actual_weight(rollout)
    workloads = cluster.workloads(rollout)
    now = datetime.now(UTC)
    tree = build_tree(rollout, workloads.deployments, workloads.replica_sets, workloads.pods, now)
    parsed = parse_rollout_spec(dict(rollout.get("spec") or {}))
    keys = rollout_template_keys(parsed) if isinstance(parsed, RolloutSpec) else ()
    templates = cluster.analysis_templates(namespace, keys) if keys else None
    text = render_rollout(
        rollout,
        events,
        now,
        templates=templates,
        actual=actual,
        symbols=display.symbols,
        tree=tree,
        palette=display.palette,
        width=display.columns(),
    )
    return text, _change_key(rollout, events, actual, workloads)


def watch_release(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    out: TextIO,
    display: Display,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Draws the ModelRelease until ``timeout`` seconds passed (None: until interrupted).

    Raises :class:`CliError` when the ModelRelease is deleted or the API server fails."""
    from rollwise.cli.render_release import render_release  # noqa: PLC0415 - its own kind

    def frame(release: dict[str, Any]) -> tuple[str, tuple[object, ...]]:
        uid = (release.get("metadata") or {}).get("uid")
        events = cluster.object_events(MODELRELEASES, namespace, name, uid)
        text = render_release(
            release,
            events,
            datetime.now(UTC),
            symbols=display.symbols,
            palette=display.palette,
            width=display.columns(),
        )
        return text, _change_key(release, events, None)

    _watch(
        cluster,
        MODELRELEASES,
        namespace,
        name,
        frame,
        out=out,
        tty=display.tty,
        timeout=timeout,
        clock=clock,
    )


def _watch(
    cluster: Cluster,
    plural: str,
    namespace: str,
    name: str,
    frame: Frame,
    *,
    out: TextIO,
    tty: bool,
    timeout: float | None,
    clock: Callable[[], float],
) -> None:
    deadline = None if timeout is None else clock() + timeout
    obj = cluster.get_object(plural, namespace, name)
    inbox: queue.Queue[_Item] = queue.Queue()
    version = str(obj.get("metadata", {}).get("resourceVersion", ""))
    watcher = _Watcher(cluster, namespace, name, version, inbox, plural=plural)
    watcher.start()
    last_frame = ""
    last_key: tuple[object, ...] | None = None
    try:
        while True:
            text, key = frame(obj)
            if tty:
                if text != last_frame:
                    out.write(CLEAR + text)
                    out.flush()
                    last_frame = text
            elif key != last_key:
                out.write(("\n" if last_key is not None else "") + text)
                out.flush()
                last_key = key
            wait = REFRESH_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - clock())
                if wait <= 0:
                    return
            try:
                item = inbox.get(timeout=wait)
            except queue.Empty:
                continue
            while True:
                kind, payload = item
                if kind == "error":
                    raise payload
                if kind == "deleted":
                    raise CliError(
                        f'{KIND_WORDS[plural]} "{name}" was deleted from namespace "{namespace}"'
                    )
                obj = payload
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
    finally:
        watcher.stopping.set()


def _next_object(
    inbox: queue.Queue[_Item], wait: float, plural: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """The next version of the object the watcher handed over within ``wait`` seconds, or
    None when none came. Each version in turn: a status line per state it went through."""
    try:
        kind, payload = inbox.get(timeout=wait)
    except queue.Empty:
        return None
    if kind == "error":
        raise payload
    if kind == "deleted":
        raise CliError(f'{KIND_WORDS[plural]} "{name}" was deleted from namespace "{namespace}"')
    return dict(payload)


def watch_status(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    out: TextIO,
    display: Display,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> RolloutState:
    """Prints the Rollout's status line each time it changes, until it is final (Healthy or
    Degraded) or ``timeout`` seconds passed (None: no limit); returns the last state.

    Raises :class:`CliError` when the Rollout is deleted or the API server fails."""
    deadline = None if timeout is None else clock() + timeout
    obj = cluster.get_rollout(namespace, name)
    state = rollout_state(obj)
    out.write(state.line(display.palette) + "\n")
    out.flush()
    if state.final:
        return state
    inbox: queue.Queue[_Item] = queue.Queue()
    version = str(obj.get("metadata", {}).get("resourceVersion", ""))
    watcher = _Watcher(cluster, namespace, name, version, inbox)
    watcher.start()
    try:
        while True:
            wait = REFRESH_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - clock())
                if wait <= 0:
                    return state
            found = _next_object(inbox, wait, ROLLOUTS, namespace, name)
            if found is None:
                continue
            new = rollout_state(found)
            if new.line() != state.line():
                out.write(new.line(display.palette) + "\n")
                out.flush()
            state = new
            if state.final:
                return state
    finally:
        watcher.stopping.set()


__all__ = ["rollout_view", "watch_release", "watch_rollout", "watch_status"]
