"""``kubectl rollwise get rollout|modelrelease NAME --watch``: a live view of one object.

A background thread holds a real watch on the object (field selector ``metadata.name``,
watched again when the server ends the stream, re-read after 410 Gone) and hands each new
version of the object to the main thread through a queue. The main thread redraws at least
every second, so ages and pause countdowns move between changes, and stops at ``--timeout``.

On a terminal each frame replaces the previous one (ANSI home and clear). When the output is
not a terminal (a pipe, a log file) a frame is printed only when something it shows changed
other than the passing of time (the object, its events, a Rollout's actual weight), each new
frame after a blank line: a log then reads as the history of the rollout, not as one frame a
second.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException

from rollwise.cli.kube import KIND_WORDS, MODELRELEASES, ROLLOUTS, CliError, Cluster
from rollwise.cli.render import ActualWeight, Symbols, render_rollout
from rollwise.cli.render_release import render_release

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
                except ApiException as exc:
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


def _change_key(
    obj: dict[str, Any], events: list[dict[str, Any]], actual: ActualWeight | None
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
    return version, seen, actual


#: A frame of the view and the key that changes when something in it changed other than time.
Frame = Callable[[dict[str, Any]], tuple[str, tuple[object, ...]]]


def watch_rollout(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    out: TextIO,
    tty: bool,
    symbols: Symbols,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Draws the Rollout until ``timeout`` seconds passed (None: until interrupted).

    Raises :class:`CliError` when the Rollout is deleted or the API server fails."""

    def frame(rollout: dict[str, Any]) -> tuple[str, tuple[object, ...]]:
        events = cluster.rollout_events(namespace, name)
        actual = cluster.actual_weight(rollout)
        text = render_rollout(rollout, events, datetime.now(UTC), actual=actual, symbols=symbols)
        return text, _change_key(rollout, events, actual)

    _watch(
        cluster, ROLLOUTS, namespace, name, frame, out=out, tty=tty, timeout=timeout, clock=clock
    )


def watch_release(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    out: TextIO,
    tty: bool,
    symbols: Symbols,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Draws the ModelRelease until ``timeout`` seconds passed (None: until interrupted).

    Raises :class:`CliError` when the ModelRelease is deleted or the API server fails."""

    def frame(release: dict[str, Any]) -> tuple[str, tuple[object, ...]]:
        events = cluster.object_events(MODELRELEASES, namespace, name)
        text = render_release(release, events, datetime.now(UTC), symbols=symbols)
        return text, _change_key(release, events, None)

    _watch(
        cluster,
        MODELRELEASES,
        namespace,
        name,
        frame,
        out=out,
        tty=tty,
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


__all__ = ["watch_release", "watch_rollout"]
