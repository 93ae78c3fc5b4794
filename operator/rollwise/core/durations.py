"""Go-style durations (``30s``, ``5m``, ``1h30m``, ``250ms``, ``1.5s``) as Kubernetes users
write them in manifests.

Pure parsing only: the accepted grammar is the one of :data:`rollwise.core.spec.DURATION_PATTERN`
(units ``ms``, ``s``, ``m``, ``h``; no sign, no bare numbers), so a duration the CRD admits is
one this module parses.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

#: Longest duration accepted (about 290 years, Go's time.Duration limit is similar): anything
#: larger is certainly a typo and would overflow ``timedelta`` arithmetic on datetimes.
MAX_SECONDS = 9_000_000_000.0


class InvalidDuration(ValueError):
    """The text is not a Go-style duration."""


def parse_seconds(text: str) -> float:
    """Seconds in ``text``; raises :class:`InvalidDuration` for anything else."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise InvalidDuration(
            f"invalid duration {text!r}: expected a number with unit ms, s, m or h, "
            "e.g. 30s, 5m, 1h30m"
        )
    total = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART.findall(text))
    if total > MAX_SECONDS:
        raise InvalidDuration(f"invalid duration {text!r}: longer than {MAX_SECONDS:.0f}s")
    return total


def parse_duration(text: str) -> timedelta:
    """``text`` as a :class:`~datetime.timedelta`; raises :class:`InvalidDuration`."""
    return timedelta(seconds=parse_seconds(text))


def is_valid(text: str) -> bool:
    """Whether ``text`` parses."""
    try:
        parse_seconds(text)
    except InvalidDuration:
        return False
    return True


def format_seconds(seconds: float) -> str:
    """A short human form for messages: ``90`` → ``1m30s``, ``0.25`` → ``250ms``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    rest = seconds - whole
    hours, rem = divmod(whole, 3600)
    minutes, secs = divmod(rem, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or rest or not out:
        out += f"{secs + rest:g}s"
    return out


def add_seconds(at: datetime, seconds: float) -> datetime:
    """``at`` plus ``seconds``, saturating at the largest representable time instead of
    overflowing (a huge delay means "never" in practice)."""
    try:
        return at + timedelta(seconds=seconds)
    except OverflowError:
        return datetime.max.replace(tzinfo=at.tzinfo)


def sooner(requeue: float | None, at: datetime | None, now: datetime) -> float | None:
    """``requeue`` (seconds from ``now``, None: nothing pending), or the wait until ``at``
    when that comes first."""
    if at is None:
        return requeue
    wait = max((at - now).total_seconds(), 0.0)
    return wait if requeue is None else min(requeue, wait)
