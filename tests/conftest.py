"""Shared fixtures: the lab's pytest plugins."""

pytest_plugins = [
    "hack.lab.testing.kube_fixtures",
    "hack.lab.testing.service_fixtures",
]
