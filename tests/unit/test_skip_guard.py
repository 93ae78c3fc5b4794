"""The unit suite's skip guard, run on small test files of its own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: The guard is imported already (tests/unit/conftest.py), so pytest cannot rewrite it again.
ARGS = (
    "-p",
    "no:randomly",
    "-p",
    "no:cacheprovider",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)

CASES = """
import pytest

def test_silent_skip():
    pytest.skip("lua5.1 is not installed")

def test_skip_naming_an_issue():
    pytest.skip("flaky under load, see #123")

@pytest.mark.skipif(True, reason="no helm here")
def test_skipif_silent():
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_failure():
    assert False

def test_import_or_skip():
    pytest.importorskip("a_module_that_is_not_there")
"""


def test_a_skip_fails_unless_it_names_an_issue(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("pytest_plugins = ['tests.unit.skip_guard']")
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest(*ARGS)
    # A skipif mark skips in setup: failing there reports an error.
    result.assert_outcomes(failed=2, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_skipif_silent*",
            "skipped without naming an issue (no helm here)*",
            "*_ test_silent_skip _*",
            "skipped without naming an issue (lua5.1 is not installed)*",
            "*_ test_import_or_skip _*",
            "skipped without naming an issue (could not import 'a_module_that_is_not_there'*",
        ]
    )


def test_a_module_level_skip_fails_unless_it_names_an_issue(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("pytest_plugins = ['tests.unit.skip_guard']")
    pytester.makepyfile(
        test_silent="import pytest\npytest.skip('no cluster', allow_module_level=True)\n",
        test_named="import pytest\npytest.skip('see #7', allow_module_level=True)\n",
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(errors=1, skipped=1)
    result.stdout.fnmatch_lines(["*skipped without naming an issue (no cluster)*"])
