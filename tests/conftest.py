"""Shared fixtures (the lab's pytest plugins), and the lab cluster's binaries built before any
test that needs them runs.

A cold build of the binaries takes many minutes, far beyond a test's timeout; building after
collection, outside any test, keeps the timeout for the tests themselves. With a warm cache
this is a hash of a few files. pytest-xdist workers each get here: the build's file lock makes
the first one build and the others wait for it.
"""

from __future__ import annotations

import os
import sys

import pytest

from hack.cluster import build

pytest_plugins = [
    "hack.lab.testing.cluster_fixtures",
    "hack.lab.testing.service_fixtures",
]

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
