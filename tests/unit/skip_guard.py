"""No silent skips in the unit suite: a skipped test fails unless its reason names an issue.

A unit test's subject (a module, a binary the test command installs, a fixture file) is part
of the build; when it is missing the test must fail and say so, not skip and leave a green run
that tested nothing. A skip that has to stay (a known bug being worked on) names its issue in
the reason: ``pytest.skip("flaky on 3.12, see #123")``. Expected failures (``xfail``) are not
skips and are left alone. ``tests/unit/conftest.py`` installs these hooks for tests/unit.
"""

from __future__ import annotations

import re
from collections.abc import Generator

import pytest

#: An issue reference: ``#123`` or a URL ending in ``/issues/123``.
ISSUE = re.compile(r"(?<![\w&])#\d+\b|/issues/\d+\b")


def _reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def unnamed_skip(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The reason of a skip that names no issue (None when the report is no such skip)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    reason = _reason(report.longrepr)
    return None if ISSUE.search(reason) else reason


def _fail(report: pytest.TestReport | pytest.CollectReport, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"skipped without naming an issue ({reason}); a unit test whose subject is missing "
        "fails, and a skip that stays names its issue (#N)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    reason = unnamed_skip(report)
    if reason is not None:
        _fail(report, reason)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    reason = unnamed_skip(report)
    if reason is not None:
        _fail(report, reason)
    return report
