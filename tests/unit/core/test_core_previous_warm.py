"""A replaced stable revision kept warm: the Rollout's ``scaleDownDelayReplicas`` (its share
of ``replicas`` until ``scaleDownDelaySeconds`` removes it), and the ModelRelease's watch
passed to its child Rollout, so the revision the child replaced stays warm for the watch and
the release's rollback (the child's template back, promote-full) moves traffic at once."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.modelrelease.spec import child_rollout_spec
from rollwise.core.observations import ManualRequest, RequestKind, RevisionState, revision_of
from rollwise.core.rollout.actions import EnsureRevision, PointStableService
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.validation import load_rollout_spec
from tests.unit.core.modelrelease_builders import raw_release, server_template
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V1,
    V2,
    Cluster,
    at,
    drive,
    raw_spec,
    ready,
    reasons,
)


def rollout(template: dict[str, Any], share: int | None, delay: int = 60) -> RolloutSpec:
    raw = raw_spec(image_template=template, steps=[{"setWeight": 100}], scale_down_delay=delay)
    if share is not None:
        raw["strategy"]["canary"]["scaleDownDelayReplicas"] = share
    return RolloutSpec.model_validate(raw)


def promoted(share: int | None) -> tuple[RolloutStatus, Cluster]:
    """V2 promoted over V1 at 10 s (4 replicas, scaleDownDelaySeconds 60)."""
    cluster = Cluster()
    status, _, _ = drive(rollout(V1, share), None, cluster, V1, at(0))
    status, seen, _ = drive(rollout(V2, share), status, cluster, V2, at(10))
    assert status is not None
    assert status.stable_revision == R2
    assert "RolloutCompleted" in seen, seen
    return status, cluster


@pytest.mark.parametrize(
    ("share", "kept"),
    [
        pytest.param(None, 4, id="unset-keeps-what-it-had"),
        pytest.param(100, 4, id="all"),
        pytest.param(50, 2, id="half"),
        pytest.param(30, 2, id="rounded-up"),
        pytest.param(0, 0, id="none-deployment-kept"),
    ],
)
def test_the_replaced_revision_keeps_its_share_until_the_delay_ends(
    share: int | None, kept: int
) -> None:
    status, cluster = promoted(share)
    assert [r.revision for r in status.retired_revisions] == [R1]
    assert cluster.revisions[R1].desired_replicas == kept
    assert cluster.revisions[R2].desired_replicas == 4
    # Still within the delay: the share is held (re-asserted, not drifting).
    status, _, _ = drive(rollout(V2, share), status, cluster, V2, at(60))
    assert status is not None
    assert cluster.revisions[R1].desired_replicas == kept
    # The delay over (promoted at 10 s + 60 s): removed.
    status, seen, _ = drive(rollout(V2, share), status, cluster, V2, at(71))
    assert "RevisionRetired" in seen, seen
    assert R1 not in cluster.revisions


def test_going_back_to_the_warm_revision_moves_all_traffic_in_one_pass() -> None:
    status, cluster = promoted(100)
    assert cluster.revisions[R1] == ready(4)
    back = rollout(V1, 100)
    observed = cluster.observe(V1, requests=(ManualRequest(RequestKind.PROMOTE_FULL, "back-1"),))
    decision = decide(back, status, observed, at(20))
    assert reasons(decision) == ["RevisionDetected", "PromotedFull", "RolloutCompleted"]
    assert PointStableService("web-stable", R1) in decision.actions
    assert decision.status.stable_revision == R1
    assert decision.status.canary_revision is None


# ------------------------------------------------------------------ the ModelRelease's child


def watched_release(template: dict[str, Any], **watch: Any) -> ModelReleaseSpec:
    raw = raw_release(steps=[{"setWeight": 100}])
    raw["serving"]["template"] = template
    raw["serving"]["replicas"] = 4
    raw["canary"]["postPromotion"] = {
        "duration": "120s",
        "interval": "5s",
        "windows": {"short": "5s", "long": "30s"},
        "metrics": [
            {
                "name": "error-ratio",
                "successCondition": "result < 0.05",
                "provider": {"prometheus": {"query": "errors[{{window}}]"}},
            }
        ],
        **watch,
    }
    return ModelReleaseSpec.model_validate(raw)


@pytest.mark.parametrize(
    ("watch", "delay", "share"),
    [
        pytest.param({}, 125, 100, id="duration-and-one-interval-at-full-size"),
        pytest.param({"previousRevisionReplicas": 25}, 125, 25, id="a-quarter"),
        pytest.param({"duration": "10s", "interval": "1s"}, 30, 100, id="never-under-the-default"),
        pytest.param({"duration": "24h", "interval": "5m"}, 86700, 100, id="a-day"),
    ],
)
def test_the_watch_reaches_the_child_rollout(watch: dict[str, Any], delay: int, share: int) -> None:
    child = child_rollout_spec(watched_release(server_template(), **watch))
    canary = child["strategy"]["canary"]
    assert (canary["scaleDownDelaySeconds"], canary["scaleDownDelayReplicas"]) == (delay, share)
    # The child never runs the watch itself: the release does.
    assert "postPromotion" not in canary
    loaded, errors = load_rollout_spec(child)
    assert errors == []
    assert loaded is not None
    assert loaded.strategy.canary.scale_down_delay_replicas == share


def test_without_a_watch_the_child_spec_is_unchanged() -> None:
    spec = ModelReleaseSpec.model_validate(raw_release())
    canary = child_rollout_spec(spec)["strategy"]["canary"]
    assert "scaleDownDelaySeconds" not in canary
    assert "scaleDownDelayReplicas" not in canary


def child_spec(spec: ModelReleaseSpec) -> RolloutSpec:
    loaded, errors = load_rollout_spec(child_rollout_spec(spec))
    assert errors == []
    assert loaded is not None
    return loaded


@pytest.mark.parametrize(
    ("share", "kept"),
    [pytest.param(100, 4, id="all"), pytest.param(50, 2, id="half")],
)
def test_the_child_keeps_the_previous_version_warm_for_the_watch(share: int, kept: int) -> None:
    """Version 1 then version 2 served by the child (its spec as the release writes it);
    while the release watches version 2 the child keeps version 1's revision at its share,
    and the release's rollback (version 1's template back, promote-full) moves all traffic to
    it in the pass that sees it, with the pods it kept, while it scales back to full size."""
    first = watched_release(server_template("model-server:1"), previousRevisionReplicas=share)
    second = watched_release(server_template("model-server:2"), previousRevisionReplicas=share)
    one, two = child_spec(first), child_spec(second)
    old, new = revision_of(one.template), revision_of(two.template)
    cluster = Cluster()
    status, _, _ = drive(one, None, cluster, one.template, at(0))
    status, seen, _ = drive(two, status, cluster, two.template, at(10))
    assert status is not None
    assert "RolloutCompleted" in seen, seen
    assert cluster.revisions[old] == ready(kept)
    # Late in the watch (promoted at 10 s, watched for 120 s from a little later).
    status, _, _ = drive(two, status, cluster, two.template, at(128))
    assert status is not None
    assert cluster.revisions[old] == ready(kept)
    # The release's rollback: the template that served before, promote-full.
    cluster.unready.add(old)  # the pods it starts to get back to full size are not ready yet
    observed = cluster.observe(
        one.template, requests=(ManualRequest(RequestKind.PROMOTE_FULL, "rb"),)
    )
    decision = decide(one, status, observed, at(129))
    assert reasons(decision) == ["RevisionDetected", "PromotedFull", "RolloutCompleted"]
    assert PointStableService("fraud-stable", old) in decision.actions
    assert EnsureRevision(old, 4, one.template) in decision.actions
    assert decision.status.stable_revision == old
    assert decision.status.canary_revision is None
    # Kept in turn, at the share: the regressed revision, until its own delay ends.
    assert [r.revision for r in decision.status.retired_revisions] == [new]
    cluster.apply(decision)
    cluster.unready.discard(old)
    cluster.revisions[old] = ready(4)
    status, _, _ = drive(one, decision.status, cluster, one.template, at(130))
    assert status is not None
    assert status.stable_revision == old
    assert cluster.revisions[new] == ready(kept)


def test_a_kept_revision_returns_only_with_its_share_available() -> None:
    """Going back to a kept revision whose pods are not available (evicted, say) waits for
    full size like any promotion."""
    status, cluster = promoted(50)
    cluster.revisions[R1] = RevisionState(desired_replicas=2, updated_replicas=2)
    cluster.unready.add(R1)
    back = rollout(V1, 50)
    observed = cluster.observe(V1, requests=(ManualRequest(RequestKind.PROMOTE_FULL, "b"),))
    decision = decide(back, status, observed, at(20))
    assert reasons(decision) == ["RevisionDetected", "PromotedFull"]
    assert decision.status.stable_revision == R2
    assert "waiting for canary" in decision.status.message


def test_an_expired_revision_returns_at_full_size_only() -> None:
    """Past its scaleDownDelaySeconds the revision is gone: going back starts it again and
    waits for full size."""
    status, cluster = promoted(50)
    status, _, _ = drive(rollout(V2, 50), status, cluster, V2, at(71))
    assert status is not None
    assert R1 not in cluster.revisions
    cluster.unready.add(R1)
    back = rollout(V1, 50)
    observed = cluster.observe(V1, requests=(ManualRequest(RequestKind.PROMOTE_FULL, "b"),))
    decision = decide(back, status, observed, at(72))
    assert reasons(decision) == ["RevisionDetected", "PromotedFull"]
    assert decision.status.stable_revision == R2


def test_after_the_watch_and_an_interval_the_previous_revision_goes() -> None:
    spec = watched_release(server_template("model-server:2"))
    two = child_spec(spec)
    one = child_spec(watched_release(server_template("model-server:1")))
    old = revision_of(one.template)
    cluster = Cluster()
    status, _, _ = drive(one, None, cluster, one.template, at(0))
    status, _, _ = drive(two, status, cluster, two.template, at(10))
    assert old in cluster.revisions
    status, seen, _ = drive(two, status, cluster, two.template, at(10 + 125))
    assert "RevisionRetired" in seen, seen
    assert old not in cluster.revisions


def test_bad_share_is_refused_by_the_model() -> None:
    raw = raw_spec(image_template=V1)
    raw["strategy"]["canary"]["scaleDownDelayReplicas"] = 101
    _, errors = load_rollout_spec(raw)
    assert errors
    assert "scaleDownDelayReplicas" in errors[0]
