"""The Argo CD customizations in examples/argocd run in a real Lua 5.1 interpreter.

Argo CD evaluates health checks and resource actions with gopher-lua (Lua 5.1) and without the
standard libraries, so each script runs here under ``lua5.1`` in an environment holding only
``obj`` and Lua's base iteration and conversion functions: a script that reaches for ``string``
or ``os`` fails here as it would in Argo CD. Objects cross as JSON (lua-cjson).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollwise.core.observations import RequestKind, requests_from_annotations

ROOT = Path(__file__).resolve().parents[2]
ARGOCD_CM = ROOT / "examples" / "argocd" / "argocd-cm-rollwise.yaml"
LUA = shutil.which("lua5.1")

DRIVER = """
local cjson = require("cjson")
obj = cjson.decode(io.read("*a"))
local chunk = assert(loadfile(arg[1]))
setfenv(chunk, {obj = obj, ipairs = ipairs, pairs = pairs, tostring = tostring,
                tonumber = tonumber, type = type})
io.write(cjson.encode(chunk()))
"""


def _data() -> dict[str, str]:
    data: dict[str, str] = yaml.safe_load(ARGOCD_CM.read_text(encoding="utf-8"))["data"]
    return data


def _actions() -> dict[str, Any]:
    actions: dict[str, Any] = yaml.safe_load(
        _data()["resource.customizations.actions.rollwise.dev_Rollout"]
    )
    return actions


def run_lua(script: str, obj: dict[str, Any], tmp_path: Path) -> Any:
    assert LUA is not None, "lua5.1 is missing: the test command installs it (Debian lua5.1)"
    driver = tmp_path / "driver.lua"
    driver.write_text(DRIVER, encoding="utf-8")
    source = tmp_path / "script.lua"
    source.write_text(script, encoding="utf-8")
    done = subprocess.run(
        [LUA, str(driver), str(source)],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def rollout(
    status: dict[str, Any] | None = None,
    *,
    generation: int = 2,
    paused: bool = False,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "generation": generation, "resourceVersion": "4711"},
        "spec": {"paused": paused},
    }
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    if status is not None:
        obj["status"] = status
    return obj


def observed(phase: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {"phase": phase, "message": message, "observedGeneration": 2, **extra}


HEALTH_CASES = [
    pytest.param(rollout(), "Progressing", "Waiting for the Rollwise operator", id="no-status"),
    pytest.param(
        rollout(observed("Healthy", "stable"), generation=3),
        "Progressing",
        "observe generation 3",
        id="spec-not-yet-observed",
    ),
    pytest.param(
        rollout(observed("Healthy", "revision abc is stable at 100%")),
        "Healthy",
        "revision abc is stable at 100%",
        id="healthy",
    ),
    pytest.param(
        rollout(observed("Progressing", "step 2/3: weight 25%")),
        "Progressing",
        "step 2/3",
        id="canary-running",
    ),
    pytest.param(
        rollout(
            observed(
                "Paused",
                "step 3/4: paused until promoted",
                headerRoutes=[
                    {"name": "beta", "match": ["x-segment exact 'beta'"]},
                    {"name": "gold", "match": ["Cookie regex '...'"]},
                ],
            )
        ),
        "Suspended",
        "step 3/4: paused until promoted (header routes to the canary: beta, gold)",
        id="paused-with-header-routes",
    ),
    pytest.param(
        rollout(
            observed(
                "Paused",
                "step 2/3: paused until promoted",
                mirrorRoutes=[{"name": "shadow", "percentage": 20}],
            )
        ),
        "Suspended",
        "step 2/3: paused until promoted (mirrored to the canary: shadow 20%)",
        id="paused-with-a-mirror",
    ),
    pytest.param(
        rollout(observed("Paused", "paused by spec.paused")),
        "Suspended",
        "paused by spec.paused",
        id="paused",
    ),
    pytest.param(
        rollout(
            observed(
                "Paused",
                "step 2/3 (approval): waiting for approval by security (product: bob)",
                pauseReason="AwaitingApproval",
                approvals={"stepIndex": 1, "pending": ["security"]},
            )
        ),
        "Suspended",
        "waiting for approval by security",
        id="awaiting-approval",
    ),
    pytest.param(
        rollout(
            observed(
                "Paused",
                "step 2/3 (approval): waiting for approval by security; timed out at "
                "2026-01-02T10:00:00Z, holding",
                pauseReason="ApprovalTimedOut",
            )
        ),
        "Suspended",
        "timed out at 2026-01-02T10:00:00Z, holding",
        id="approval-timed-out",
    ),
    pytest.param(
        rollout(
            observed(
                "Waiting",
                "new revision b2 waits for upstream: staging/web soaking 10m until "
                "2026-01-01T10:10:00Z",
                awaitingUpstream="b2",
            )
        ),
        "Suspended",
        "waits for upstream: staging/web",
        id="waiting-for-upstream",
    ),
    pytest.param(
        rollout(
            observed(
                "Paused",
                "step 3/3 (setWeight 100%): 100% to the canary waits for confirm-promotion "
                "webhook change-window (answered 403)",
                webhooks=[
                    {
                        "name": "change-window",
                        "type": "confirm-promotion",
                        "revision": "b2",
                        "result": "Held",
                        "code": 403,
                    }
                ],
            )
        ),
        "Suspended",
        "waits for confirm-promotion webhook change-window (answered 403)",
        id="held-by-a-confirm-webhook",
    ),
    pytest.param(
        rollout(
            observed(
                "Paused",
                "preview b2 awaits promotion",
                pauseReason="AwaitingPromotion",
                blueGreen={"activeRevision": "a1", "previewRevision": "b2"},
            )
        ),
        "Suspended",
        "preview b2 awaits promotion (blue-green: active a1, preview b2)",
        id="blue-green-awaiting-promotion",
    ),
    pytest.param(
        rollout(
            observed(
                "Progressing",
                "preview b2: waiting for its pods: 1/2 available",
                blueGreen={"activeRevision": "a1", "previewRevision": "b2"},
            )
        ),
        "Progressing",
        "(blue-green: active a1, preview b2)",
        id="blue-green-preview-starting",
    ),
    pytest.param(
        rollout(observed("Healthy", "revision b2 is stable", blueGreen={"activeRevision": "b2"})),
        "Healthy",
        "revision b2 is stable (blue-green: active b2)",
        id="blue-green-switched",
    ),
    pytest.param(
        rollout(observed("Degraded", "rolled back: error-ratio 0.2 failed")),
        "Degraded",
        "rolled back",
        id="rolled-back",
    ),
    pytest.param(
        rollout(
            observed(
                "Progressing",
                "x",
                conditions=[
                    {"type": "Ready", "status": "False"},
                    {"type": "InvalidSpec", "status": "True", "message": "weights decrease"},
                ],
            )
        ),
        "Degraded",
        "weights decrease",
        id="invalid-spec-wins",
    ),
]


@pytest.mark.parametrize(("obj", "health", "message"), HEALTH_CASES)
def test_health(obj: dict[str, Any], health: str, message: str, tmp_path: Path) -> None:
    script = _data()["resource.customizations.health.rollwise.dev_Rollout"]
    result = run_lua(script, obj, tmp_path)
    assert result["status"] == health
    assert message in result["message"]


CANARY = {"canaryRevision": "b2", "stableRevision": "a1"}
DISCOVERY_CASES = [
    pytest.param(
        rollout(observed("Healthy")),
        {"pause"},
        id="healthy-idle",
    ),
    pytest.param(
        rollout(observed("Progressing", **CANARY)),
        {"promote", "promote-full", "abort", "pause"},
        id="canary-running",
    ),
    pytest.param(
        rollout(observed("Paused", pauseReason="AnalysisInconclusive", **CANARY)),
        {"promote", "promote-full", "abort", "retry", "pause"},
        id="inconclusive",
    ),
    pytest.param(
        rollout(observed("Degraded", rolledBackRevision="b2")),
        {"retry", "pause"},
        id="rolled-back",
    ),
    pytest.param(
        rollout(observed("Paused", pauseReason="SpecPaused", **CANARY), paused=True),
        {"promote", "promote-full", "abort", "resume"},
        id="spec-paused",
    ),
]


def release(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": "fraud-7", "generation": generation},
        "spec": {"model": "fraud", "version": "7"},
    }
    if status is not None:
        obj["status"] = {"observedGeneration": generation, **status}
    return obj


@pytest.mark.parametrize(
    ("obj", "health", "message"),
    [
        pytest.param(release(), "Progressing", "Waiting for the Rollwise operator", id="none"),
        pytest.param(
            {**release({"phase": "Healthy"}), "metadata": {"name": "x", "generation": 3}},
            "Progressing",
            "observe generation 3",
            id="stale",
        ),
        pytest.param(
            release({"stage": "Production", "phase": "Healthy", "message": "alias on 7"}),
            "Healthy",
            "alias on 7",
            id="production",
        ),
        pytest.param(
            release({"stage": "Approved", "phase": "Waiting", "message": "freeze window"}),
            "Suspended",
            "freeze window",
            id="waiting",
        ),
        pytest.param(
            release({"stage": "Candidate", "phase": "Queued", "message": "behind fraud-6"}),
            "Progressing",
            "behind fraud-6",
            id="queued",
        ),
        pytest.param(
            release({"stage": "RolledBack", "phase": "Degraded", "message": "canary failed"}),
            "Degraded",
            "canary failed",
            id="rolled-back",
        ),
    ],
)
def test_model_release_health(
    obj: dict[str, Any], health: str, message: str, tmp_path: Path
) -> None:
    script = _data()["resource.customizations.health.rollwise.dev_ModelRelease"]
    result = run_lua(script, obj, tmp_path)
    assert result["status"] == health
    assert message in result["message"]


@pytest.mark.parametrize(("obj", "enabled"), DISCOVERY_CASES)
def test_action_discovery(obj: dict[str, Any], enabled: set[str], tmp_path: Path) -> None:
    result = run_lua(_actions()["discovery.lua"], obj, tmp_path)
    assert set(result) == {"promote", "promote-full", "abort", "retry", "pause", "resume"}
    assert {name for name, action in result.items() if not action["disabled"]} == enabled


@pytest.mark.parametrize("kind", list(RequestKind), ids=lambda k: k.value)
@pytest.mark.parametrize("annotations", [None, {"team": "shop"}], ids=["none", "existing"])
def test_request_actions_file_a_request_the_core_reads(
    kind: RequestKind, annotations: dict[str, str] | None, tmp_path: Path
) -> None:
    (definition,) = [d for d in _actions()["definitions"] if d["name"] == kind.value]
    result = run_lua(definition["action.lua"], rollout(annotations=annotations), tmp_path)
    requests = requests_from_annotations(result["metadata"]["annotations"])
    assert [(r.kind, r.id) for r in requests] == [(kind, "argocd-4711")]
    assert result["metadata"]["annotations"].get("team") == (annotations or {}).get("team")
    assert result["spec"] == {"paused": False}


@pytest.mark.parametrize(("name", "paused"), [("pause", True), ("resume", False)])
def test_pause_and_resume_set_spec_paused(name: str, paused: bool, tmp_path: Path) -> None:
    (definition,) = [d for d in _actions()["definitions"] if d["name"] == name]
    result = run_lua(definition["action.lua"], rollout(paused=not paused), tmp_path)
    assert result["spec"]["paused"] is paused
    assert "annotations" not in result["metadata"]


def test_every_action_has_a_definition_and_every_request_kind_an_action() -> None:
    names = {d["name"] for d in _actions()["definitions"]}
    assert names == {"pause", "resume"} | {k.value for k in RequestKind}


def test_the_sandbox_refuses_standard_libraries(tmp_path: Path) -> None:
    # Proves the harness would catch a script relying on what Argo CD does not provide.
    assert LUA is not None
    driver = tmp_path / "driver.lua"
    driver.write_text(DRIVER, encoding="utf-8")
    source = tmp_path / "script.lua"
    source.write_text('return {s = string.upper("x")}', encoding="utf-8")
    done = subprocess.run(
        [LUA, str(driver), str(source)],
        input="{}",
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode != 0
    assert "string" in done.stderr
