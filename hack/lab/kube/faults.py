"""Fault injection for the API emulator: failing, delayed and dropped requests on demand.

Tests call :class:`FaultInjector` in process; other processes (the lab CLI, the demo) use the
``/lab/faults`` endpoint with the same parameters as JSON. Faults match on the Kubernetes verb
(get, list, watch, create, update, patch, delete, deletecollection), the resource (plural, or
``plural/subresource``) and the namespace; None matches anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class _Rule:
    verb: str | None
    resource: str | None
    namespace: str | None


@dataclass
class _Failure(_Rule):
    remaining: int
    status: int
    message: str
    retry_after: int


@dataclass
class _Delay(_Rule):
    seconds: float
    remaining: int | None


@dataclass(frozen=True)
class InjectedFailure:
    code: int
    reason: str
    message: str
    headers: dict[str, str]


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._drop_hook: Callable[[str | None], int] | None = None

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        *,
        message: str | None = None,
        retry_after: int = 1,
    ) -> None:
        """The next ``n`` matching requests fail with a ``Status`` of code ``status``
        (429 carries ``Retry-After``)."""
        text = message or f"injected fault: {status} {_REASONS.get(status, 'Failure')}"
        with self._lock:
            self._failures.append(_Failure(verb, resource, namespace, n, status, text, retry_after))

    def delay(
        self,
        seconds: float,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Delays matching responses by ``seconds`` (the next ``times`` ones, or all)."""
        with self._lock:
            self._delays.append(_Delay(verb, resource, namespace, seconds, times))

    def drop_watches(self, resource: str | None = None) -> int:
        """Closes the open watch streams (of ``resource``) abruptly; returns how many."""
        hook = self._drop_hook
        return hook(resource) if hook is not None else 0

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "failures": [asdict(f) for f in self._failures],
                "delays": [asdict(d) for d in self._delays],
            }

    # ---------------------------------------------------------------------------- server side

    def _attach(self, drop_hook: Callable[[str | None], int]) -> None:
        self._drop_hook = drop_hook

    def take(
        self, verb: str, resource: str, namespace: str | None
    ) -> tuple[float, InjectedFailure | None]:
        """The delay and the failure (if any) for one request; consumes counted faults."""
        with self._lock:
            delay = 0.0
            for d in list(self._delays):
                if _match(d, verb, resource, namespace):
                    delay = max(delay, d.seconds)
                    if d.remaining is not None:
                        d.remaining -= 1
                        if d.remaining <= 0:
                            self._delays.remove(d)
            for f in self._failures:
                if _match(f, verb, resource, namespace):
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self._failures.remove(f)
                    headers = {"Retry-After": str(f.retry_after)} if f.status == 429 else {}
                    reason = _REASONS.get(f.status, "InternalError")
                    return delay, InjectedFailure(f.status, reason, f.message, headers)
            return delay, None

    def apply_json(self, body: dict[str, Any]) -> Any:
        """One control request of the ``/lab/faults`` endpoint."""
        action = body.get("action")
        args = {k: v for k, v in body.items() if k != "action"}
        if action == "fail_next":
            self.fail_next(**args)
        elif action == "delay":
            self.delay(**args)
        elif action == "drop_watches":
            return {"dropped": self.drop_watches(args.get("resource"))}
        elif action == "clear":
            self.clear()
        else:
            raise ValueError(f"unknown fault action {action!r}")
        return self.describe()


def _match(rule: _Rule, verb: str, resource: str, namespace: str | None) -> bool:
    return (
        (rule.verb is None or rule.verb == verb)
        and (rule.resource is None or rule.resource == resource)
        and (rule.namespace is None or rule.namespace == namespace)
    )
