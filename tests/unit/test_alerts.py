"""The chart's alerts: the PrometheusRule rendered by the real helm (alerts.enabled=true) is
checked and unit-tested by the real promtool (``promtool check rules``, ``promtool test rules``
on ``tests/unit/alerts/rollwise-alerts.test.yaml``): each alert fires when it should, with its
labels and annotations, and stays silent when it should not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rollwise"
TESTS = ROOT / "tests" / "unit" / "alerts" / "rollwise-alerts.test.yaml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

#: Every alert of the rule, and the ones whose series the operator does not export yet.
ALERTS = {
    "RollwiseRolloutDegraded",
    "RollwiseAnalysisInconclusive",
    "RollwiseRegressionConfirmed",
    "RollwiseOperatorDown",
    "RollwiseNotificationsFailing",
    "RollwiseNotificationsDropped",
    "RollwiseEventsLost",
}
PENDING = {"RollwiseRegressionConfirmed": "rollwise_regressions_total"}


def render(*sets: str) -> list[dict[str, Any]]:
    helm = shutil.which("helm")
    assert helm, "helm is missing: run `make system-deps`"
    args = [helm, "template", "rollwise", str(CHART), "--namespace", "rollwise-system"]
    for item in ("alerts.enabled=true", *sets):
        args += ["--set", item]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "PrometheusRule"]


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool is missing (Debian's prometheus package ships it)")
    (rule,) = render()
    directory = tmp_path_factory.mktemp("alerts")
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    shutil.copy(TESTS, directory / TESTS.name)
    return directory


def test_the_rules_are_valid_and_complete(rules: Path) -> None:
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules / "rules.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    groups = yaml.safe_load((rules / "rules.yaml").read_text())["groups"]
    assert {r["alert"] for g in groups for r in g["rules"]} == ALERTS
    tested = yaml.safe_load(TESTS.read_text())["tests"]
    covered = {t["alertname"] for case in tested for t in case["alert_rule_test"]}
    assert covered == ALERTS


def test_promtool_unit_tests_pass(rules: Path) -> None:
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", TESTS.name],
        cwd=rules,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_pending_series_are_documented() -> None:
    text = (ROOT / "docs" / "observability.md").read_text()
    for alert, series in PENDING.items():
        assert alert in text
        assert series in text


def test_values_shape_the_rule() -> None:
    (rule,) = render(
        "alerts.degradedMinutes=30",
        "alerts.operatorJob=ops-rollwise",
        "alerts.labels.release=kube-prometheus",
        "alerts.extraLabels.team=platform",
    )
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    by_name = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert by_name["RollwiseRolloutDegraded"]["for"] == "30m"
    assert 'job="ops-rollwise"' in by_name["RollwiseOperatorDown"]["expr"]
    assert all(r["labels"]["team"] == "platform" for r in by_name.values())


def test_off_by_default() -> None:
    helm = shutil.which("helm")
    assert helm
    proc = subprocess.run(
        [helm, "template", "rollwise", str(CHART)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    kinds = [d["kind"] for d in yaml.safe_load_all(proc.stdout) if d]
    assert "PrometheusRule" not in kinds
    assert not [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "ConfigMap"], (
        "the dashboard is off by default"
    )
