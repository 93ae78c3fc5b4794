"""Logging for the operator process: structlog everywhere, JSON lines in a cluster.

:func:`configure` sets up structlog and routes the standard library's logging (kopf, aiohttp,
the Kubernetes client) through the same renderer, so every line of the process has one format:
JSON (one object per line: ``timestamp``, ``level``, ``logger``, ``event`` and the bound
fields) or a readable console rendering. In the operator (``background=True``) the lines are
rendered and written by a thread of their own (``QueueHandler``/``QueueListener``): a log call
only queues the record, so the event loop never blocks on, or gives up the GIL for, a write
to a slow or contended stdout. kopf's own loggers stay at INFO (its per-object
handler chatter at WARNING) unless ``--verbose``; HTTP client libraries at WARNING.

:func:`rollout_logger` is the logger of one reconcile pass: it carries ``namespace``,
``rollout`` and ``revision`` on every line it writes.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from typing import Any, TextIO

import structlog

from rollwise.runtime.settings import LogFormat

#: Loggers too chatty at INFO for an operator's log.
_QUIET = ("aiohttp", "urllib3", "kubernetes", "asyncio")


def _renderer(log_format: LogFormat) -> Any:
    if log_format is LogFormat.JSON:
        return structlog.processors.JSONRenderer(sort_keys=False)
    return structlog.dev.ConsoleRenderer(colors=False)


class _Handoff(logging.handlers.QueueHandler):
    """Queues the record as it is: the listener's handler formats it. (The stock ``prepare``
    formats in the calling thread, which is the work this handler is here to move.)"""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: logging.handlers.QueueListener | None = None


def _stop_listener() -> None:
    """Writes out what is queued and stops the writer thread (at exit, or on reconfiguring)."""
    global _listener  # noqa: PLW0603 - one writer thread per process
    if _listener is not None:
        _listener.stop()
        _listener = None


def configure(
    log_format: LogFormat,
    *,
    verbose: bool = False,
    stream: TextIO | None = None,
    background: bool = False,
) -> None:
    """Configure structlog and the standard library's root logger (idempotent). With
    ``background``, lines are rendered and written by a writer thread (flushed at exit)."""
    global _listener  # noqa: PLW0603 - one writer thread per process
    _stop_listener()
    level = logging.DEBUG if verbose else logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _renderer(log_format),
        ],
    )
    handler: logging.Handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(formatter)
    if background:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _listener = logging.handlers.QueueListener(records, handler)
        _listener.start()
        atexit.register(_stop_listener)
        handler = _Handoff(records)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("kopf").setLevel(level)
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # The CEL interpreter traces every evaluation at DEBUG: useless even when verbose.
    logging.getLogger("celpy").setLevel(logging.WARNING)


def logger(name: str = "rollwise") -> Any:
    """A structlog logger (``structlog.stdlib.BoundLogger``)."""
    return structlog.get_logger(name)


def rollout_logger(namespace: str, name: str, revision: str | None) -> Any:
    """The logger of one reconcile pass of a Rollout."""
    return logger("rollwise.rollout").bind(
        namespace=namespace, rollout=name, revision=revision or ""
    )


def release_logger(namespace: str, name: str, version: str | None, ticket: str | None) -> Any:
    """The logger of one reconcile pass of a ModelRelease: every line names the release, the
    model version and the change ticket."""
    return logger("rollwise.modelrelease").bind(
        namespace=namespace, modelrelease=name, version=version or "", change=ticket or ""
    )


__all__ = ["configure", "logger", "release_logger", "rollout_logger"]
