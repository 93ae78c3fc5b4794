"""``wait_established``: a CRD the API server has just created has ``status.conditions: null``
until its establishing controller runs; the wait goes on through that (``kubectl wait`` fails
on it at once). A real server shows this only in a race, so kubectl's answers are scripted."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from hack.cluster import ClusterError, wait_established


def crd(name: str, conditions: list[dict[str, str]] | None) -> dict[str, Any]:
    return {
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "status": {"conditions": conditions, "acceptedNames": {}},
    }


ESTABLISHED = [
    {"type": "NamesAccepted", "status": "True"},
    {"type": "Established", "status": "True"},
]


class ScriptedKubectl:
    def __init__(self, *answers: dict[str, Any] | None) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str, timeout: float = 30, check: bool = False) -> Any:
        self.calls.append(args)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer is None:
            return subprocess.CompletedProcess(args, 1, "", "Error from server (NotFound)")
        return subprocess.CompletedProcess(args, 0, json.dumps(answer), "")


def test_null_conditions_are_waited_through() -> None:
    kubectl = ScriptedKubectl(
        crd("rollouts.rollwise.dev", None),
        crd("rollouts.rollwise.dev", [{"type": "NamesAccepted", "status": "True"}]),
        crd("rollouts.rollwise.dev", ESTABLISHED),
    )
    wait_established(kubectl, "rollouts.rollwise.dev", timeout=10)
    assert len(kubectl.calls) == 3
    assert kubectl.calls[0] == (
        "get",
        "customresourcedefinitions",
        "rollouts.rollwise.dev",
        "-o",
        "json",
    )


def test_every_crd_of_a_list_must_be_established() -> None:
    both = {
        "kind": "List",
        "items": [crd("a.example.com", ESTABLISHED), crd("b.example.com", None)],
    }
    kubectl = ScriptedKubectl(both)
    with pytest.raises(ClusterError, match=r"b\.example\.com") as raised:
        wait_established(kubectl, timeout=0.3)
    assert "a.example.com" not in str(raised.value)
    assert len(kubectl.calls) >= 2


def test_a_missing_crd_times_out_with_kubectls_error() -> None:
    kubectl = ScriptedKubectl(None)
    with pytest.raises(ClusterError, match="NotFound"):
        wait_established(kubectl, "nope.example.com", timeout=0.3)
