"""Every bounded wait of the end-to-end tests, recorded: what was waited for, how long it took
and its limit (already stretched by ``ROLLWISE_E2E_PATIENCE``). The session prints the slowest
against their limits at its end (``tests/conftest.py``), so that a slowdown is seen while the
waits still pass, long before one times out.

Kept free of heavy imports: the root conftest reads it on the controller of an xdist run too.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Wait:
    what: str
    elapsed: float
    limit: float
    test: str
    #: False when the wait ran out (its test failed on it).
    met: bool = True

    @property
    def used(self) -> float:
        """The fraction of its limit the wait used."""
        return self.elapsed / self.limit if self.limit > 0 else 0.0


#: This process's waits, in order.
WAITS: list[Wait] = []


def current_test() -> str:
    """The node id of the running test (pytest sets ``PYTEST_CURRENT_TEST``)."""
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]


def record(what: str, elapsed: float, limit: float, *, met: bool = True) -> None:
    WAITS.append(Wait(what, elapsed, limit, current_test(), met))


def to_json(waits: list[Wait]) -> list[dict[str, Any]]:
    return [asdict(w) for w in waits]


def from_json(items: list[dict[str, Any]]) -> list[Wait]:
    return [Wait(**item) for item in items]


def slowest(waits: list[Wait], count: int = 5) -> list[Wait]:
    """The ``count`` waits that used the largest share of their limits."""
    return sorted(waits, key=lambda w: w.used, reverse=True)[:count]


def report(waits: list[Wait], count: int = 5) -> list[str]:
    """The lines the session prints: the slowest waits against their limits."""
    if not waits:
        return []
    lines = [f"slowest of {len(waits)} bounded waits (elapsed / limit, share used):"]
    for wait in slowest(waits, count):
        flag = "" if wait.met else "  TIMED OUT"
        lines.append(
            f"  {wait.elapsed:7.1f} s / {wait.limit:6.0f} s  {wait.used:4.0%}  "
            f"{wait.what}  [{wait.test}]{flag}"
        )
    return lines
