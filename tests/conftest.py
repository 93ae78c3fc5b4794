"""Shared fixtures (the lab's pytest plugins), and the lab cluster's binaries built before any
test that needs them runs.

A cold build of the binaries takes many minutes, far beyond a test's timeout; building after
collection, outside any test, keeps the timeout for the tests themselves. With a warm cache
this is a hash of a few files. pytest-xdist workers each get here: the build's file lock makes
the first one build and the others wait for it.

Hypothesis profiles (docs/testing.md):

* ``ci`` -- derandomized (the examples are a function of the test alone, so a failure in CI
  fails again on any machine), bounded, no example database, ``print_blob`` so a failure
  prints the ``@reproduce_failure`` line that replays it;
* ``dev`` -- random examples, the same bound, failures kept in ``.hypothesis/examples``
  (git-ignored) and replayed first by the next run, ``print_blob`` as in CI;
* ``mutation`` -- derandomized and small, for ``make mutate`` (each mutant runs the property
  tests that reach it; its verdict must not depend on chance or on a database).

``HYPOTHESIS_PROFILE`` chooses one; without it the ``CI`` variable chooses ``ci``, otherwise
``dev``. ``pytest --hypothesis-profile=NAME`` overrides both. The header of every run names
the profile in force.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from hack.cluster import build
from tests import waits

pytest_plugins = [
    "hack.lab.testing.cluster_fixtures",
    "hack.lab.testing.service_fixtures",
]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / ".hypothesis" / "examples"

#: Checks of the properties that generate whole specs and statuses: slow to build and large by
#: design, and the machine is shared, so a wall-clock deadline would only make them flaky.
_COMMON = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("ci", parent=_COMMON, derandomize=True, max_examples=150, database=None)
settings.register_profile(
    "dev",
    parent=_COMMON,
    max_examples=150,
    database=DirectoryBasedExampleDatabase(EXAMPLES),
)
settings.register_profile(
    "mutation", parent=_COMMON, derandomize=True, max_examples=20, database=None, print_blob=False
)


def hypothesis_profile(environ: Mapping[str, str] = os.environ) -> str:
    """The profile this run uses: ``HYPOTHESIS_PROFILE``, else ``ci`` under CI, else ``dev``."""
    chosen = environ.get("HYPOTHESIS_PROFILE", "").strip()
    if chosen:
        return chosen
    return "ci" if environ.get("CI", "").strip().lower() not in {"", "0", "false"} else "dev"


settings.load_profile(hypothesis_profile())


def pytest_report_header(config: pytest.Config) -> str:
    current = settings()
    return (
        f"hypothesis profile {settings.get_current_profile_name()!r}: "
        f"derandomize={current.derandomize}, max_examples={current.max_examples}, "
        f"database={'none' if current.database is None else EXAMPLES.relative_to(ROOT)}"
    )


#: Markers of tests that run a lab cluster.
CLUSTER_MARKERS = ("cluster", "lab")


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if os.environ.get("ROLLWISE_E2E_KUBECONFIG"):
        return  # the end-to-end tests on another cluster (hack/e2e-kind.sh): no lab cluster
    if not any(
        item.get_closest_marker(marker) for item in session.items for marker in CLUSTER_MARKERS
    ):
        return
    # An xdist worker's terminal output is never shown; its stderr is the run's own.
    worker = hasattr(session.config, "workerinput")
    reporter = None if worker else session.config.pluginmanager.get_plugin("terminalreporter")

    def log(message: str) -> None:
        if reporter is not None:
            reporter.write_line(message)
        else:
            print(message, file=sys.__stderr__, flush=True)

    build.ensure_built(log=log)


# The slowest bounded waits of the end-to-end tests against their limits (tests/waits.py): each
# xdist worker hands its waits to the controller, which prints them with its summary.
_WORKER_WAITS: list[waits.Wait] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["e2e_waits"] = json.dumps(waits.to_json(waits.WAITS))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    received = getattr(node, "workeroutput", {}).get("e2e_waits")
    if received:
        _WORKER_WAITS.extend(waits.from_json(json.loads(received)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in waits.report(waits.WAITS + _WORKER_WAITS):
        terminalreporter.write_line(line)
