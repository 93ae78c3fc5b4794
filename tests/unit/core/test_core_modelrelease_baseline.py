"""A ModelRelease served by a pod template runs its canary through a child Rollout: with
``serving.baseline`` that child Rollout runs a baseline, as a Rollout of its own would."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.modelrelease.spec import (
    MSG_BASELINE_NEEDS_TEMPLATE,
    child_rollout_spec,
    release_content,
    validate_release,
)
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.validation import (
    MSG_BASELINE_NEEDS_SERVICE,
    MSG_BASELINE_SERVICE_DIFFERS,
    load_rollout_spec,
)
from tests.unit.core.modelrelease_builders import raw_release, release


def with_serving(backend: str = "template", **serving: Any) -> ModelReleaseSpec:
    raw = raw_release(backend=backend)
    raw["serving"].update(serving)
    return ModelReleaseSpec.model_validate(raw)


def test_the_child_rollout_carries_the_baseline() -> None:
    spec = with_serving(baseline=True, baselineService="fraud-baseline")
    child = child_rollout_spec(spec)
    canary = child["strategy"]["canary"]
    assert (canary["baseline"], canary["baselineService"]) == (True, "fraud-baseline")
    rollout, errors = load_rollout_spec(child)
    assert errors == []
    assert rollout is not None
    assert rollout.strategy.canary.baseline
    assert rollout.strategy.canary.baseline_service == "fraud-baseline"


def test_without_baseline_the_child_rollout_is_unchanged() -> None:
    canary = child_rollout_spec(release())["strategy"]["canary"]
    assert "baseline" not in canary
    assert "baselineService" not in canary


def test_the_baseline_does_not_change_what_an_approval_is_bound_to() -> None:
    """Like the steps and the analysis, the baseline is how the canary is judged, not what
    runs once promoted: switching it on keeps an approval valid."""
    plain = release_content(release())
    with_baseline = release_content(with_serving(baseline=True, baselineService="fraud-baseline"))
    assert plain == with_baseline


@pytest.mark.parametrize(
    ("backend", "serving", "errors"),
    [
        pytest.param(
            "template", {"baseline": True, "baselineService": "fraud-baseline"}, [], id="valid"
        ),
        pytest.param(
            "template",
            {"baseline": True},
            [f"spec.serving: {MSG_BASELINE_NEEDS_SERVICE}"],
            id="router-without-service",
        ),
        pytest.param(
            "template",
            {"baseline": True, "baselineService": "fraud-canary"},
            [f"spec.serving: {MSG_BASELINE_SERVICE_DIFFERS}"],
            id="service-is-the-canary",
        ),
        pytest.param(
            "kserve",
            {"baseline": True},
            [f"spec.serving: {MSG_BASELINE_NEEDS_TEMPLATE}"],
            id="kserve",
        ),
    ],
)
def test_baseline_validation(backend: str, serving: dict[str, Any], errors: list[str]) -> None:
    assert validate_release(with_serving(backend, **serving)) == errors
