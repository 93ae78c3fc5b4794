"""The upstream Rollouts of spec.promotion.after as a pass reads them: what is taken from
their status, when they are read at all, and a Forbidden read (a namespace-scoped operator)
turned into a message that makes the spec invalid."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.adapters.errors import Forbidden, Unavailable
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.runtime.rollout.upstreams import needs_upstreams, read_upstreams, upstream_read
from tests.unit.core.rollout_builders import R1, R2, raw_spec


def gated(*after: tuple[str, str]) -> RolloutSpec:
    raw = raw_spec()
    raw["promotion"] = {"after": [{"namespace": n, "rollout": r, "soak": "10s"} for n, r in after]}
    return RolloutSpec.model_validate(raw)


class Cluster:
    """The cluster port's Rollout reads: bodies by (namespace, name), a namespace refused."""

    def __init__(self, bodies: dict[tuple[str, str], dict[str, Any]], refused: str = "") -> None:
        self.bodies = bodies
        self.refused = refused
        self.reads: list[tuple[str, str]] = []

    def read_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        if namespace == self.refused:
            raise Forbidden("forbidden", status=403)
        if namespace == "down":
            raise Unavailable("unavailable", status=503)
        return self.bodies.get((namespace, name))

    def patch_status(self, *args: Any) -> dict[str, Any]:
        raise AssertionError("not used")

    def post_event(self, *args: Any) -> None:
        raise AssertionError("not used")

    def post_logged(self, *args: Any) -> bool:
        raise AssertionError("not used")


def body(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "status": status}


def test_read_takes_phase_revisions_and_healthy_since() -> None:
    read = upstream_read(
        "staging",
        "web",
        body(phase="Healthy", stableRevision=R2, healthySince="2026-01-01T12:00:00Z"),
    )
    assert read.found
    assert read.phase == "Healthy"
    assert read.stable_revision == R2
    assert read.canary_revision is None
    assert read.healthy_since == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_read_of_a_missing_rollout() -> None:
    read = upstream_read("staging", "web", None)
    assert not read.found
    assert read.stable_revision is None


@pytest.mark.parametrize(
    "status",
    [
        pytest.param({"phase": "Healthy", "healthySince": "yesterday"}, id="bad-time"),
        pytest.param({"phase": "Healthy", "healthySince": 5}, id="not-a-string"),
        pytest.param({"phase": "Healthy"}, id="absent"),
    ],
)
def test_unparsable_healthy_since_is_absent(status: dict[str, Any]) -> None:
    read = upstream_read("staging", "web", body(**status))
    assert read.found
    assert read.healthy_since is None


@pytest.mark.parametrize(
    ("status", "template_hash", "wanted"),
    [
        pytest.param(None, R2, False, id="first-observation"),
        pytest.param(RolloutStatus(stable_revision=R1), R1, False, id="stable-template"),
        pytest.param(RolloutStatus(stable_revision=R1), R2, True, id="new-revision"),
        pytest.param(
            RolloutStatus(stable_revision=R1, canary_revision=R2), R2, False, id="canary-running"
        ),
    ],
)
def test_needs_upstreams(status: RolloutStatus | None, template_hash: str, wanted: bool) -> None:
    assert needs_upstreams(gated(("staging", "web")), status, template_hash) is wanted
    assert not needs_upstreams(RolloutSpec.model_validate(raw_spec()), status, template_hash)


def test_read_upstreams_reads_each_once() -> None:
    cluster = Cluster({("staging", "web"): body(phase="Healthy", stableRevision=R2)})
    spec = gated(("staging", "web"), ("qa", "web"))
    found, refused = asyncio.run(read_upstreams(cluster, spec, namespace="prod", name="web"))
    assert refused == []
    assert cluster.reads == [("staging", "web"), ("qa", "web")]
    assert found[("staging", "web")].stable_revision == R2
    assert not found[("qa", "web")].found


def test_forbidden_namespace_is_named() -> None:
    cluster = Cluster({("staging", "web"): body(phase="Healthy")}, refused="prod-eu")
    found, refused = asyncio.run(
        read_upstreams(
            cluster, gated(("staging", "web"), ("prod-eu", "web")), namespace="prod", name="web"
        )
    )
    assert list(found) == [("staging", "web")]
    assert len(refused) == 1
    assert refused[0].startswith("spec.promotion.after[1]: the operator may not read Rollouts")
    assert "namespace prod-eu" in refused[0]


def test_other_failures_raise() -> None:
    with pytest.raises(Unavailable):
        asyncio.run(
            read_upstreams(Cluster({}), gated(("down", "web")), namespace="prod", name="web")
        )


def test_the_rollout_itself_is_no_upstream() -> None:
    cluster = Cluster({("prod", "web"): body(phase="Healthy")})
    found, refused = asyncio.run(
        read_upstreams(cluster, gated(("prod", "web")), namespace="prod", name="web")
    )
    assert found == {}
    assert cluster.reads == []
    assert refused == [
        "spec.promotion.after[0]: names this Rollout itself; an upstream is another Rollout "
        "that runs a revision first"
    ]
