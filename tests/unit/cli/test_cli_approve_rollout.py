"""``kubectl rollwise approve rollout/NAME --role R``: which approval step it approves and the
request it writes (the webhook's protocol, :mod:`rollwise.core.rollout.approvals`). The
read-back against a real webhook runs in tests/e2e/test_approval_e2e.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollwise.cli.common import CliError
from rollwise.cli.rollout_approve import approve_patch, step_to_approve
from rollwise.core.rollout.approvals import APPROVE

STEPS = [
    {"setWeight": 10},
    {"approval": {"roles": ["product"]}},
    {"setWeight": 50},
    {"approval": {"roles": ["product", "security"], "timeout": "24h"}},
    {"setWeight": 100},
]


def rollout(index: int | None, *, canary: str | None = "b2", steps: Any = None) -> dict[str, Any]:
    status: dict[str, Any] = {"stableRevision": "a1"}
    if canary is not None:
        status.update(canaryRevision=canary, currentStepIndex=index)
    return {
        "metadata": {"name": "web"},
        "spec": {"strategy": {"canary": {"steps": STEPS if steps is None else steps}}},
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "role", "step", "expected"),
    [
        pytest.param(rollout(1), "product", None, 1, id="at-the-step"),
        pytest.param(rollout(0), "product", None, 1, id="the-next-step"),
        pytest.param(rollout(2), "security", None, 3, id="a-later-step"),
        pytest.param(rollout(1), "security", 4, 3, id="step-given"),
    ],
)
def test_step_chosen(obj: dict[str, Any], role: str, step: int | None, expected: int) -> None:
    assert step_to_approve(obj, "web", role, step) == expected


@pytest.mark.parametrize(
    ("obj", "role", "step", "message"),
    [
        pytest.param(
            rollout(1, steps=[{"setWeight": 100}]),
            "product",
            None,
            'rollout "web" has no approval step',
            id="no-approval-step",
        ),
        pytest.param(
            rollout(None, canary=None),
            "product",
            None,
            'rollout "web" runs no canary: there is no revision to approve',
            id="no-canary",
        ),
        pytest.param(rollout(4), "product", None, "is past its approval steps", id="past"),
        pytest.param(
            rollout(1),
            "security",
            None,
            'step 2 of rollout "web" asks for approval by product, not security',
            id="role-not-asked",
        ),
        pytest.param(
            rollout(1),
            "product",
            3,
            'step 3 of rollout "web" is not an approval step (2, 4)',
            id="not-an-approval-step",
        ),
    ],
)
def test_refused_before_writing(
    obj: dict[str, Any], role: str, step: int | None, message: str
) -> None:
    with pytest.raises(CliError, match=message.replace("(", r"\(").replace(")", r"\)")):
        step_to_approve(obj, "web", role, step)


def test_request_is_the_webhooks_protocol() -> None:
    patch = approve_patch("20261208-abc", "security", 3)
    value = json.loads(patch["metadata"]["annotations"][APPROVE])
    assert value == {"id": "20261208-abc", "role": "security", "step": 3}
