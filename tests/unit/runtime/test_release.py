"""The ModelRelease reconcile pass, state in → state out, with the adapters as in-memory fakes.

The child Rollout and the InferenceService are plain dicts the tests move as their
controllers would; the alias store is ``NopAliasStore`` (the in-memory store of the contract
test), made to fail on demand.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollwise.adapters.errors import Conflict, ManifestRefused, RegistryUnavailable
from rollwise.adapters.registry.base import AliasTarget, NopAliasStore
from rollwise.adapters.releases import PROMOTE_FULL, ReleaseRef
from rollwise.core.events import Event, LoggedEvent, event_name
from rollwise.core.modelrelease.observations import (
    GATE_APPROVALS,
    GATE_POLICY_ACCEPT,
    GATE_POLICY_PROMOTE,
    Approval,
    GateResult,
    InferenceServiceState,
)
from rollwise.core.modelrelease.policy import ReleaseRules
from rollwise.core.modelrelease.spec import all_gates, child_revision, load_release_spec
from rollwise.core.modelrelease.status import GateStatus, ModelReleaseStatus
from rollwise.core.notification_bodies import Subject
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.runtime import logging as rlog
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.release.observe import child_state
from rollwise.runtime.release.ports import ReleasePorts
from rollwise.runtime.release.reconcile import reconcile_release
from rollwise.runtime.release.slots import slot_holder
from rollwise.runtime.settings import LogFormat
from rollwise.runtime.skeleton import Memory, PassResult, merge_patch_diff
from tests.unit.runtime.fakes import as_event

NS = "ml"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DIGEST = "sha256:" + hashlib.sha256(b"model-7").hexdigest()


def release_body(name: str = "fraud-7", version: str = "7", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": f"2026-11-02T08:00:0{len(name) % 10}Z",
            "annotations": {},
        },
        "spec": {
            "model": "fraud",
            "version": version,
            "artifact": {"uri": f"file:///models/fraud/{version}", "digest": DIGEST},
            "change": {"type": "normal", "ticket": "CHG-7"},
            "serving": {
                "stableService": "fraud-stable",
                "canaryService": "fraud-canary",
                "template": {
                    "metadata": {"labels": {"app": "fraud"}},
                    "spec": {"containers": [{"name": "server", "image": "srv:1"}]},
                },
            },
            "approvals": {"requiredRoles": []},
        },
    }
    body["spec"].update(spec)
    return body


def kserve_spec() -> dict[str, Any]:
    return {"serving": {"inferenceServiceRef": {"name": "fraud"}}}


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class FakeCluster:
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[str, Event]] = field(default_factory=list)
    patches: int = 0
    #: Conflict the next N status writes (somebody else wrote since the read).
    conflicts: int = 0
    #: Names of the logged events posted (a second post of one is refused, as AlreadyExists).
    event_names: set[str] = field(default_factory=set)

    def read_release(self, namespace: str, name: str) -> dict[str, Any] | None:
        body = self.bodies.get(name)
        return copy.deepcopy(body) if body is not None else None

    def patch_release_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        body = self.bodies[name]
        if self.conflicts > 0:
            self.conflicts -= 1
            raise Conflict("the object has been modified")
        if resource_version != body["metadata"]["resourceVersion"]:
            raise Conflict("stale")
        status = body.setdefault("status", {})
        _merge(status, patch)
        body["metadata"]["resourceVersion"] = str(int(resource_version or "0") + 1)
        self.patches += 1
        return copy.deepcopy(body)

    def post_release_event(self, release: ReleaseRef, event: Event) -> None:
        self.events.append((release.name, event))

    def post_release_logged(self, release: ReleaseRef, entry: LoggedEvent) -> bool:
        name = event_name(release.name, release.uid, entry.seq)
        if name in self.event_names:
            return False
        self.event_names.add(name)
        self.events.append((release.name, as_event(entry)))
        return True

    def reasons(self, name: str) -> list[str]:
        return [e.reason.name for n, e in self.events if n == name]


@dataclass
class FakeObjects:
    cluster: FakeCluster
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledger: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def list_releases(self, namespace: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(b) for b in self.cluster.bodies.values()]

    def read_child(self, namespace: str, name: str) -> dict[str, Any] | None:
        child = self.children.get(name)
        return copy.deepcopy(child) if child is not None else None

    def ensure_child(
        self,
        release: ReleaseRef,
        name: str,
        spec: Mapping[str, Any],
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> bool:
        child = self.children.setdefault(name, {"metadata": {"annotations": {}}, "spec": {}})
        before = copy.deepcopy(child)
        _merge(child["spec"], merge_patch_diff(child["spec"], spec))
        child["metadata"]["annotations"].update(annotations or {})
        child["metadata"]["release"] = release.name
        return child != before

    def read_manifest(self, namespace: str, release: str) -> dict[str, Any] | None:
        return self.manifests.get(f"{release}-manifest")

    def write_manifest(self, release: ReleaseRef, name: str, content: Mapping[str, Any]) -> bool:
        old = self.manifests.get(name)
        if old is not None:
            if old["version"] != content["version"]:
                raise ManifestRefused("exists")
            return False
        self.manifests[name] = dict(content)
        return True

    def revoked(
        self, namespace: str, model: str, version: str, scope: str = ""
    ) -> dict[str, Any] | None:
        found = self.ledger.get((model, version))
        return found if found is not None and found.get("scope") == scope else None

    def record_revocation(self, namespace: str, record: Mapping[str, Any], scope: str = "") -> bool:
        key = (str(record["model"]), str(record["version"]))
        if key in self.ledger:
            return False
        self.ledger[key] = {**record, "scope": scope}
        return True


@dataclass
class FakeServing:
    state: InferenceServiceState | None = None
    calls: list[tuple[str, object]] = field(default_factory=list)

    def read(self, namespace: str, name: str) -> InferenceServiceState | None:
        return self.state

    def set_storage_uri(
        self, namespace: str, name: str, uri: str, canary_percent: int | None
    ) -> bool:
        self.calls.append(("uri", (uri, canary_percent)))
        return True

    def set_canary_percent(self, namespace: str, name: str, percent: int) -> bool:
        self.calls.append(("percent", percent))
        return True

    def remove_canary_percent(self, namespace: str, name: str) -> bool:
        self.calls.append(("remove", None))
        return True


@dataclass
class FakeGates:
    overrides: dict[str, GateStatus] = field(default_factory=dict)

    def evaluate(
        self,
        namespace: str,
        spec: ModelReleaseSpec,
        now: datetime,
        required: tuple[str, ...] = (),
    ) -> tuple[GateResult, ...]:
        return tuple(
            GateResult(name, self.overrides.get(name, GateStatus.PASSED), "fake", now)
            for name in all_gates(spec, ReleaseRules(required_gates=required))
            if name not in (GATE_APPROVALS, GATE_POLICY_ACCEPT, GATE_POLICY_PROMOTE)
        )

    def evaluate_policies(
        self,
        namespace: str,
        name: str,
        spec: ModelReleaseSpec,
        *,
        status: ModelReleaseStatus | None,
        gates: Sequence[GateResult],
        approvals: Sequence[Approval],
        now: datetime,
    ) -> tuple[GateResult, ...]:
        return tuple(
            GateResult(gate, self.overrides.get(gate, GateStatus.PASSED), "fake", now)
            for gate in (GATE_POLICY_ACCEPT, GATE_POLICY_PROMOTE)
        )


class FailingStore(NopAliasStore):
    """``NopAliasStore`` whose writes fail while ``down`` is set."""

    down = False

    def set(
        self, model: str, alias: str, target: AliasTarget, *, expected: str | None
    ) -> AliasTarget:
        if self.down:
            raise RegistryUnavailable("registry unreachable")
        return super().set(model, alias, target, expected=expected)


@dataclass
class World:
    cluster: FakeCluster = field(default_factory=FakeCluster)
    store: FailingStore = field(default_factory=FailingStore)
    serving: FakeServing = field(default_factory=FakeServing)
    gates: FakeGates = field(default_factory=FakeGates)
    now: datetime = T0
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    memories: dict[str, Memory] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.objects = FakeObjects(self.cluster)
        self.ports = ReleasePorts(
            cluster=self.cluster,
            objects=self.objects,
            serving=self.serving,
            alias_store_for=lambda spec, ns: self.store,
            gates=self.gates,
            provider_for=lambda address: None,  # type: ignore[arg-type,return-value]
            metrics=self.metrics,
            clock=lambda: self.now,
        )

    def add(self, body: dict[str, Any]) -> None:
        self.cluster.bodies[body["metadata"]["name"]] = body

    def run(self, name: str = "fraud-7") -> PassResult:
        memory = self.memories.setdefault(name, Memory())
        result = asyncio.run(reconcile_release(NS, name, self.ports, memory))
        self.now += timedelta(seconds=1)
        return result

    def status(self, name: str = "fraud-7") -> dict[str, Any]:
        return dict(self.cluster.bodies[name].get("status") or {})

    def settle(
        self, until: Callable[[], bool], name: str = "fraud-7", limit: int = 30
    ) -> PassResult:
        for _ in range(limit):
            result = self.run(name)
            if until():
                return result
        raise AssertionError(f"never settled; status: {self.status(name)}")

    def child_serves(self, name: str, body: dict[str, Any]) -> None:
        """Plays the child Rollout's controller: the release's revision Healthy and stable."""
        spec, _ = load_release_spec(body["spec"])
        assert spec is not None
        self.objects.children[name]["status"] = {
            "phase": "Healthy",
            "stableRevision": child_revision(spec),
            "canaryWeight": 0,
        }


def stage(w: World, name: str = "fraud-7") -> str | None:
    return w.status(name).get("stage")


# ------------------------------------------------------------------ template backend


def test_template_release_goes_to_production_only_once_the_alias_reads_back() -> None:
    w = World()
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    child = w.objects.children["fraud-production"]
    env = child["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e["value"] for e in env}["MODEL_VERSION"] == "7"
    assert stage(w) == "Staging"
    w.child_serves("fraud-production", body)
    w.settle(lambda: stage(w) == "Production")
    assert w.store.get("fraud", "production") == AliasTarget(
        "7", body["spec"]["artifact"]["uri"], DIGEST
    )
    assert w.objects.manifests["fraud-7-manifest"]["version"] == "7"
    history = [h["stage"] for h in w.status()["history"]]
    assert history == ["Candidate", "Staging", "Approved", "Production"]
    assert all("[change CHG-7]" in e.message for _, e in w.cluster.events)
    assert w.metrics.sample("rollwise_model_releases", {"stage": "Production"}) == 1


def test_a_settled_release_writes_nothing_more() -> None:
    w = World()
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    w.settle(lambda: w.status().get("phase") == "Healthy")
    patches, events = w.cluster.patches, len(w.cluster.events)
    result = w.run()
    assert not result.status_written
    assert (w.cluster.patches, len(w.cluster.events)) == (patches, events)


def test_a_failed_flip_never_shows_production_and_is_retried() -> None:
    w = World()
    body = release_body()
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    w.store.down = True
    w.settle(lambda: "ActionFailed" in w.cluster.reasons("fraud-7"))
    for _ in range(5):
        w.run()
        assert stage(w) == "Approved"
    assert w.cluster.reasons("fraud-7").count("ActionFailed") == 1
    w.store.down = False
    w.settle(lambda: stage(w) == "Production")
    assert w.store.get("fraud", "production") is not None


# ------------------------------------------------------------------ queue, revoke, records


def test_a_second_release_of_the_same_model_waits_queued_then_proceeds() -> None:
    w = World()
    first, second = release_body("fraud-7", "7"), release_body("fraud-80", "8")
    w.add(first)
    w.add(second)
    w.settle(lambda: stage(w, "fraud-7") == "Staging")
    w.run("fraud-80")
    w.run("fraud-80")
    assert w.status("fraud-80")["phase"] == "Queued"
    assert "fraud-7" in w.status("fraud-80")["message"]
    w.child_serves("fraud-production", first)
    w.settle(lambda: stage(w, "fraud-7") == "Production")
    w.settle(lambda: stage(w, "fraud-80") == "Staging", name="fraud-80")


def test_slot_holder_prefers_a_running_release_over_an_older_candidate() -> None:
    older = release_body("a", "1")
    running = release_body("bb", "2")
    running["status"] = {"stage": "Staging"}
    invalid = release_body("c", "3")
    invalid["status"] = {"stage": "Candidate", "phase": "Degraded"}
    assert slot_holder([older, running, invalid], "fraud", "production") == "bb"
    assert slot_holder([older, invalid], "fraud", "production") == "a"
    assert slot_holder([invalid], "fraud", "production") is None
    assert slot_holder([older], "other", "production") is None


def _watch_body(action: str, state: str) -> dict[str, Any]:
    return {
        "phase": "Watching",
        "revision": "6",
        "previousRevision": "5",
        "startedAt": "2026-01-01T00:00:00Z",
        "endsAt": "2026-01-02T00:00:00Z",
        "action": action,
        "kpis": [
            {
                "name": "error-rate",
                "reason": "error_rate_regression",
                "severity": "critical",
                "state": state,
            }
        ],
    }


@pytest.mark.parametrize(
    ("action", "state", "holder"),
    [
        pytest.param("hold", "confirmed", "p", id="hold-confirmed-keeps-the-slot"),
        pytest.param("hold", "cleared", "bb", id="hold-cleared-frees-it"),
        pytest.param("alert", "confirmed", "bb", id="alert-never-holds"),
    ],
)
def test_slot_held_by_a_confirmed_regression_with_action_hold(
    action: str, state: str, holder: str
) -> None:
    produced = release_body("p", "6")
    produced["status"] = {"stage": "Production", "postPromotion": _watch_body(action, state)}
    running = release_body("bb", "7")
    running["status"] = {"stage": "Staging"}
    assert slot_holder([produced, running], "fraud", "production") == holder


def test_revoke_in_production_restores_the_alias_and_enters_the_ledger() -> None:
    w = World()
    w.store.aliases[("fraud", "production")] = AliasTarget("6", "file:///models/fraud/6", None)
    body = release_body()
    w.add(body)
    w.objects.children["fraud-production"] = {
        "metadata": {"annotations": {}},
        "spec": {"template": {"metadata": {"labels": {"app": "fraud"}}, "spec": {}}},
        "status": {"phase": "Healthy", "stableRevision": "old"},
    }
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    w.settle(lambda: stage(w) == "Production")
    w.cluster.bodies["fraud-7"]["metadata"]["annotations"]["rollwise.dev/revoke"] = (
        '{"id": "r1", "reason": "bias found"}'
    )
    w.settle(
        lambda: (
            stage(w) == "Revoked"
            and w.store.get("fraud", "production") is not None
            and w.store.get("fraud", "production").version == "6"
        )
    )  # type: ignore[union-attr]
    assert ("fraud", "7") in w.objects.ledger
    child = w.objects.children["fraud-production"]
    assert child["metadata"]["annotations"][PROMOTE_FULL].startswith("revert-fraud-7")
    assert "ReleaseRevoked" in w.cluster.reasons("fraud-7")

    again = release_body("fraud-7b", "7")
    w.add(again)
    w.run("fraud-7b")
    assert w.status("fraud-7b")["phase"] == "Degraded"
    assert "revoked" in w.status("fraud-7b")["message"]
    assert w.objects.children["fraud-production"]["metadata"]["release"] == "fraud-7"


def test_a_conflicting_status_write_changes_nothing_so_the_rollback_target_survives() -> None:
    w = World()
    old_template = {"metadata": {"labels": {"app": "fraud"}}, "spec": {"containers": []}}
    w.objects.children["fraud-production"] = {
        "metadata": {"annotations": {}},
        "spec": {"template": copy.deepcopy(old_template)},
        "status": {"phase": "Healthy", "stableRevision": "old"},
    }
    body = release_body()
    w.add(body)
    w.cluster.conflicts = 1
    conflicted = w.run()  # would enter Candidate and Staging: the write conflicts
    assert not conflicted.acted
    assert w.objects.children["fraud-production"]["spec"]["template"] == old_template
    w.settle(lambda: stage(w) == "Staging")
    assert w.status()["serving"]["previousTemplate"] == old_template


def test_a_hand_written_approval_record_is_reported_once_and_never_counts() -> None:
    w = World()
    body = release_body(approvals={"requiredRoles": ["security"]})
    body["metadata"]["annotations"]["rollwise.dev/approvals"] = (
        '[{"role": "security", "user": "mallory", "version": "7", "at": "2026-11-02T08:00:00Z"}]'
    )
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    w.child_serves("fraud-production", body)
    for _ in range(6):
        w.run()
    assert stage(w) == "Staging"
    assert w.cluster.reasons("fraud-7").count("RecordRejected") == 1


# ------------------------------------------------------------------ KServe backend


def test_kserve_storage_uri_and_first_canary_percent_go_out_in_one_write() -> None:
    w = World()
    w.serving.state = InferenceServiceState(
        storage_uri="file:///models/fraud/6",
        latest_created_revision="fraud-predictor-1",
        latest_ready_revision="fraud-predictor-1",
        latest_rolledout_revision="fraud-predictor-1",
        latest_percent=100,
    )
    w.add(release_body(**kserve_spec()))
    w.settle(lambda: any(kind == "uri" for kind, _ in w.serving.calls))
    uri_calls = [args for kind, args in w.serving.calls if kind == "uri"]
    assert uri_calls[0] == ("file:///models/fraud/7", 5)
    assert ("percent", 5) not in w.serving.calls


def test_a_release_whose_alias_moved_to_a_later_release_is_superseded_not_reflipped() -> None:
    w = World()
    first, second = release_body("fraud-7", "7"), release_body("fraud-80", "8")
    w.add(first)
    w.settle(lambda: stage(w, "fraud-7") == "Staging")
    w.child_serves("fraud-production", first)
    w.settle(lambda: stage(w, "fraud-7") == "Production")
    w.add(second)
    w.settle(lambda: stage(w, "fraud-80") == "Staging", name="fraud-80")
    w.child_serves("fraud-production", second)
    w.settle(lambda: stage(w, "fraud-80") == "Production", name="fraud-80")
    writes = len(w.store.writes)
    result = w.run("fraud-7")
    assert len(w.store.writes) == writes
    assert w.store.get("fraud", "production").version == "8"  # type: ignore[union-attr]
    status = w.status("fraud-7")
    assert status["phase"] == "Healthy"
    assert "superseded" in status["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Superseded")
    assert result.requeue_after is None


class _Offers:
    def __init__(self) -> None:
        self.offered: list[tuple[Subject, LoggedEvent]] = []

    def offer(self, subject: Subject, entry: LoggedEvent) -> None:
        self.offered.append((subject, entry))


def test_a_release_offers_its_logged_events_to_the_notifier_with_its_subject() -> None:
    w = World()
    offers = _Offers()
    w.ports = replace(w.ports, notifier=offers)
    body = release_body()
    body["metadata"]["labels"] = {"team": "risk"}
    w.add(body)
    w.settle(lambda: stage(w) == "Staging")
    reasons = [entry.reason for _, entry in offers.offered]
    assert reasons[:2] == ["ReleaseCreated", "Staged"]
    assert len({entry.seq for _, entry in offers.offered}) == len(offers.offered)
    subject = offers.offered[-1][0]
    assert (subject.kind, subject.plural, subject.namespace) == (
        "ModelRelease",
        "modelreleases",
        NS,
    )
    assert subject.labels == {"team": "risk"}
    assert subject.details == {
        "model": "fraud",
        "version": "7",
        "stage": "Staging",
        "changeTicket": "CHG-7",
    }


# ------------------------------------------------------------------ log context


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The process's log lines, as the operator writes them in a cluster (JSON)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    rlog.configure(LogFormat.JSON, stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_every_log_line_of_a_release_pass_names_the_release_version_and_change(
    json_log: io.StringIO,
) -> None:
    w = World()
    w.add(release_body())
    w.run()
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    mine = [line for line in lines if line.get("logger") == "rollwise.modelrelease"]
    assert any(line.get("reason") == "ReleaseCreated" for line in mine), lines
    for line in mine:
        context = (line["namespace"], line["modelrelease"], line["version"], line["change"])
        assert context == (NS, "fraud-7", "7", "CHG-7"), line


def test_the_release_logger_binds_its_context(json_log: io.StringIO) -> None:
    rlog.release_logger("ml", "fraud-8", "8", "CHG-8").info("flipped", alias="production")
    rlog.release_logger("ml", "fraud-9", None, None).info("unread")
    flipped, unread = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert flipped["event"] == "flipped"
    assert (flipped["modelrelease"], flipped["version"], flipped["change"]) == (
        "fraud-8",
        "8",
        "CHG-8",
    )
    assert (unread["modelrelease"], unread["version"], unread["change"]) == ("fraud-9", "", "")


def test_the_child_rollouts_decision_is_read_with_its_status_and_a_bad_one_ignored() -> None:
    decision = {
        "action": "hold",
        "recommended": "rollback",
        "mode": "advisory",
        "confidence": "medium",
        "message": "hold: auto would roll back",
        "reasons": [{"code": "AdvisoryMode", "severity": "info", "message": "advisory"}],
        "decidedAt": "2026-01-01T00:00:05Z",
    }
    read = child_state({"status": {"canaryRevision": "abc", "decision": decision}})
    assert read.decision is not None
    assert read.decision.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        **decision,
        "requiredActions": [],
    }
    bad = child_state({"status": {"canaryRevision": "abc", "decision": {"action": 3}}})
    assert bad.decision is None
    assert bad.canary_revision == "abc"
    assert child_state({"status": {}}).decision is None
