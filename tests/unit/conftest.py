"""The unit suite's own rules: no silent skips (tests/unit/skip_guard.py)."""

from tests.unit.skip_guard import pytest_make_collect_report, pytest_runtest_makereport

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]
