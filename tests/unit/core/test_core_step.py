"""``status.step``: the canary step in progress as people read it (1-based ``N/steps``), which
``kubectl get rollouts`` shows, next to the 0-based ``currentStepIndex`` programs read."""

from __future__ import annotations

import pytest

from rollwise.core.observations import RevisionState
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus, step_text
from tests.unit.core.rollout_builders import R1, R2, V1, V2, Cluster, at, drive, spec_of


@pytest.mark.parametrize(
    ("index", "steps", "expected"),
    [
        pytest.param(None, 5, None, id="no-canary"),
        pytest.param(0, 5, "1/5", id="first-step"),
        pytest.param(1, 5, "2/5", id="second-step"),
        pytest.param(4, 5, "5/5", id="last-step"),
        pytest.param(5, 5, "5/5", id="all-steps-done"),
        pytest.param(0, 0, None, id="no-steps"),
        pytest.param(-1, 3, "1/3", id="corrupt-negative-index"),
    ],
)
def test_step_text(index: int | None, steps: int, expected: str | None) -> None:
    assert step_text(index, steps) == expected


def test_the_operator_writes_the_step_people_read_as_the_canary_moves() -> None:
    """Through a real canary of three steps: no step while stable, then 1/3, 2/3, 3/3 beside
    ``currentStepIndex`` 0, 1, 2, and none again once the canary is promoted."""
    steps = [{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 100}]
    cluster = Cluster()
    status, _, _ = drive(spec_of(image_template=V1, steps=steps), None, cluster, V1, at(0))
    assert status is not None
    assert status.stable_revision == R1
    assert status.step is None
    assert "step" not in status.to_wire()

    spec = spec_of(image_template=V2, steps=steps)
    seen: list[tuple[int | None, str | None]] = []
    for tick in range(60):
        decision = decide(spec, status, cluster.observe(V2), at(10 + 5 * tick))
        cluster.apply(decision)
        status = decision.status
        if status.canary_revision is not None:
            assert status.step == step_text(status.current_step_index, 3)
            assert status.to_wire()["step"] == status.step
        pair = (status.current_step_index, status.step)
        if not seen or seen[-1] != pair:
            seen.append(pair)
    assert seen[:3] == [(0, "1/3"), (1, "2/3"), (2, "3/3")]
    assert seen[-1] == (None, None)
    assert status.stable_revision == R2


def test_a_stale_step_is_repaired_on_the_next_pass() -> None:
    """A status written before the field existed (or by hand) gets it on the next pass."""
    spec = spec_of(image_template=V2, steps=[{"setWeight": 10}, {"setWeight": 100}])
    cluster = Cluster()
    cluster.revisions = {R1: RevisionState(4, 4, 4, 4), R2: RevisionState(1, 1, 1, 1)}
    before = RolloutStatus(
        stable_revision=R1, canary_revision=R2, current_step_index=1, canary_weight=50, step="9/9"
    )
    after = decide(spec, before, cluster.observe(V2), at(0)).status
    assert after.step == "2/2"
