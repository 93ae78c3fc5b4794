"""The plugin answers quickly because each command imports only what it needs: the parser
alone for ``--help`` and argument errors; for ``get rollout``, neither the CEL parser, nor the
ModelRelease wing, nor the ``kubernetes`` client's typed API classes (whose import builds
hundreds of models). Checked in fresh interpreters, by the modules they end up holding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

#: Never needed before a command runs (the core's duration parser, for ``--timeout``, is).
HEAVY = (
    "kubernetes",
    "urllib3",
    "pydantic",
    "celpy",
    "yaml",
    "rollwise.adapters",
    "rollwise.core.spec",
    "rollwise.core.rollout.status",
    "rollwise.core.analysis",
    "rollwise.core.observations",
    "rollwise.core.modelrelease",
)

#: Never needed to show a Rollout.
NOT_FOR_A_ROLLOUT = (
    "celpy",
    "lark",
    "rollwise.core.modelrelease",
    "rollwise.cli.render_release",
    "kubernetes.client.api.core_v1_api",
    "kubernetes.client.api.apps_v1_api",
    "kubernetes.client.api.custom_objects_api",
)


def loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def test_importing_the_plugin_and_building_its_parser_loads_nothing_heavy() -> None:
    modules = loaded_after("from rollwise.cli.main import build_parser\nbuild_parser()")
    assert [m for m in modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY))] == []


def test_get_rollout_loads_only_what_a_rollout_view_needs() -> None:
    code = """
import io
from rollwise.cli.main import run
from rollwise.core.rollout.status import Phase
from tests.unit.cli import workload_builders as w
from tests.unit.cli.fake_cluster import FakeCluster
rollout = w.rollout(w.CANARY_TEMPLATE, canary=w.CANARY, step=0, phase=Phase.PROGRESSING)
cluster = FakeCluster(rollout, w.deployment(w.STABLE, w.STABLE_TEMPLATE))
out, err = io.StringIO(), io.StringIO()
assert run(["get", "rollout", "web"], out, err, connector=lambda *_: cluster) == 0, err.getvalue()
assert "Revisions:" in out.getvalue()
"""
    modules = loaded_after(code)
    assert "rollwise.cli.render" in modules  # the view did run
    assert [m for m in NOT_FOR_A_ROLLOUT if m in modules] == []


def test_explain_rollout_loads_neither_the_statistics_nor_the_release_wing() -> None:
    """Explaining a Rollout needs no scipy (which the core's judge imports when it tests) and
    nothing of the ModelRelease wing. (The decision's model, ``core.decision``, is part of the
    Rollout's status model and may load: it imports no statistics.)"""
    code = """
import io
from rollwise.core.rollout.status import Phase
from tests.unit.cli import workload_builders as w
from tests.unit.cli.fake_cluster import FakeCluster
from rollwise.cli.main import run
rollout = w.rollout(w.CANARY_TEMPLATE, canary=w.CANARY, step=0, phase=Phase.PROGRESSING)
rollout["status"]["decision"] = {"action": "hold", "recommended": "hold", "mode": "auto",
    "confidence": "low", "message": "hold", "decidedAt": "2026-01-01T00:00:00Z"}
cluster = FakeCluster(rollout)
out, err = io.StringIO(), io.StringIO()
code = run(["explain", "rollout", "web"], out, err, connector=lambda *_: cluster)
assert code == 0, err.getvalue()
assert "Decision:    HOLD" in out.getvalue(), out.getvalue()
"""
    modules = loaded_after(code)
    assert "rollwise.cli.explain" in modules  # the view did run
    assert [m for m in (*NOT_FOR_A_ROLLOUT, "scipy", "scipy.stats") if m in modules] == []
