"""``kubectl rollwise scoreboard``: canary KPIs read from the analysis in status and scored
against the targets of their rules, watched KPIs as the post-promotion watch records them,
the tally per namespace and overall, the worst deltas, the open regressions; text, wide and
JSON; the window and the attention band as flags."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest

from rollwise.cli import report_commands
from rollwise.cli.main import run
from rollwise.cli.scoreboard import (
    active,
    build_board,
    direction_of_reason,
    read_release,
    watched_kpis,
)
from rollwise.cli.scoreboard_render import board_document, render_board
from rollwise.core.scoreboard import KpiDirection, KpiStatus
from tests.unit.cli import cli_builders as b
from tests.unit.cli import report_builders as rb
from tests.unit.cli.fake_cluster import FakeCluster

NOW = rb.NOW


def objects() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("rollouts", rb.judged_rollout()),
        ("modelreleases", rb.watched_release()),
        ("rollouts", rb.quiet_rollout("old", "shop", days_ago=10)),
    ]


def rows(text: str, title: str) -> list[list[str]]:
    """The table under the line starting with ``title``, cells split on 3+ spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    out = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        out.append([c.strip() for c in line.strip().split("   ") if c.strip()])
    return out


def test_canary_kpis_are_scored_against_their_rules() -> None:
    release = read_release(rb.judged_rollout(), "rollouts")
    kpis = {k.name: k for k in release.kpis}
    assert {n: (k.source, k.status) for n, k in kpis.items()} == {
        "error-ratio": ("canary", KpiStatus.ON_TRACK),
        "p99-latency": ("canary", KpiStatus.ON_TRACK),
        "latency-vs-baseline": ("canary", KpiStatus.ATTENTION),
        "checkout-availability": ("canary", KpiStatus.OFF_TRACK),
    }
    # successCondition 'result < 0.05', last value 0.011.
    ratio = kpis["error-ratio"]
    assert (ratio.value, ratio.target, ratio.direction) == (
        0.011,
        0.05,
        KpiDirection.LOWER_IS_BETTER,
    )
    assert ratio.delta is not None
    assert ratio.delta.relative == pytest.approx(-0.78)
    # compare: the canary's median against the control's moved by the 10% tolerance.
    latency = kpis["latency-vs-baseline"]
    assert latency.reference == pytest.approx(0.215)
    assert latency.target == pytest.approx(0.215 * 1.1)
    assert latency.reference_delta is not None
    assert latency.reference_delta.relative == pytest.approx(0.0025 / 0.215)
    # burn rate: the worse pair is past its rate (6h/30m: burns 6.25 and 10 above 6).
    burn = kpis["checkout-availability"]
    assert (burn.value, burn.target) == (6.25, 6.0)
    assert release.status is KpiStatus.OFF_TRACK


def test_a_wider_band_moves_a_kpi_to_attention() -> None:
    narrow = {k.name: k.status for k in read_release(rb.judged_rollout(), "rollouts", 0.1).kpis}
    wide = {k.name: k.status for k in read_release(rb.judged_rollout(), "rollouts", 0.6).kpis}
    assert narrow["p99-latency"] is KpiStatus.ON_TRACK  # 0.228 against <= 0.5
    assert wide["p99-latency"] is KpiStatus.ATTENTION  # within 60% of the limit
    none = {k.name: k.status for k in read_release(rb.judged_rollout(), "rollouts", 0.0).kpis}
    assert none["latency-vs-baseline"] is KpiStatus.ON_TRACK


def test_a_metric_without_a_readable_target_has_no_status() -> None:
    obj = rb.judged_rollout()
    metrics = obj["spec"]["strategy"]["canary"]["analysis"]["metrics"]
    metrics[0]["successCondition"] = "result < 0.05 && result >= 0"
    kpis = {k.name: k for k in read_release(obj, "rollouts").kpis}
    assert kpis["error-ratio"].status is None
    assert kpis["error-ratio"].value == 0.011


def test_no_canary_no_canary_kpis() -> None:
    release = read_release(b.rollout(b.healthy()), "rollouts")
    assert release.kpis == []
    assert release.status is None


@pytest.mark.parametrize(
    ("reason", "direction"),
    [
        pytest.param("error_rate_regression", KpiDirection.LOWER_IS_BETTER, id="error-rate"),
        pytest.param("latency_regression", KpiDirection.LOWER_IS_BETTER, id="latency"),
        pytest.param("approval_rate_drop", KpiDirection.HIGHER_IS_BETTER, id="user-kpi-drop"),
        pytest.param("kpi_drop", KpiDirection.HIGHER_IS_BETTER, id="kpi-drop"),
        pytest.param("something_else", None, id="unknown"),
        pytest.param(None, None, id="none"),
    ],
)
def test_direction_of_a_watched_kpi(reason: str | None, direction: KpiDirection | None) -> None:
    assert direction_of_reason(reason) is direction


def test_watched_kpis_keep_the_watch_status_and_sign_their_deltas() -> None:
    kpis = {k.name: k for k in watched_kpis({"kpis": rb.WATCHED_KPIS})}
    error = kpis["error-rate"]
    assert (error.status, error.state, error.open_regression) == (
        KpiStatus.OFF_TRACK,
        "confirmed",
        True,
    )
    assert error.delta is not None
    assert error.delta.absolute == pytest.approx(0.011)
    # approval rate is better when higher: 0.93 against 0.94 before is 0.01 worse.
    approval = kpis["approval-rate"]
    assert approval.reference_delta is not None
    assert approval.reference_delta.absolute == pytest.approx(0.01)
    assert approval.delta is not None
    assert approval.delta.absolute == pytest.approx(-0.03)
    assert approval.open_regression is False
    assert kpis["p95-latency"].open_regression is True


def test_a_watched_kpi_of_unknown_direction_is_shown_unsigned_and_not_ranked() -> None:
    raw = dict(rb.WATCHED_KPIS[0], reason="custom")
    (kpi,) = watched_kpis({"kpis": [raw]})
    assert kpi.direction is None
    assert kpi.delta is None
    assert kpi.reference_delta is not None
    assert kpi.reference_delta.absolute == pytest.approx(0.027)


def test_the_window_leaves_out_releases_with_nothing_recorded_in_it() -> None:
    board = build_board(objects(), NOW, since=timedelta(days=7))
    assert [r.ref for r in board.releases] == ["modelrelease/fraud-detector-7", "rollout/web"]
    assert board.left_out == 1
    every = build_board(objects(), NOW, since=timedelta(days=30))
    assert len(every.releases) == 3
    assert every.left_out == 0


def test_a_running_canary_counts_whatever_the_window() -> None:
    release = read_release(rb.judged_rollout(), "rollouts")
    assert active(release, NOW + timedelta(days=365), timedelta(hours=1))
    old = read_release(rb.quiet_rollout("old", "shop", days_ago=10), "rollouts")
    assert not active(old, NOW, timedelta(days=7))


def test_the_tally_per_namespace_and_overall() -> None:
    board = build_board(objects(), NOW, since=timedelta(days=30))
    shop, ml, overall = board.namespaces["shop"], board.namespaces["ml"], board.overall
    assert (shop.releases, shop.off_track, shop.no_kpis, shop.open_regressions) == (2, 1, 1, 0)
    assert (ml.releases, ml.off_track, ml.open_regressions) == (1, 1, 2)
    assert (overall.releases, overall.on_track, overall.off_track, overall.no_kpis) == (3, 0, 2, 1)
    assert overall.open_regressions == 2
    assert overall.worst is not None
    assert (overall.worst[0].ref, overall.worst[1].name) == (
        "modelrelease/fraud-detector-7",
        "error-rate",
    )


def test_text_view() -> None:
    text = render_board(build_board(objects(), NOW, since=timedelta(days=7)))
    lines = text.splitlines()
    assert (
        lines[0]
        == "Scoreboard: 2 release(s) active in the last 7d, attention band 10% of the target"
    )
    assert lines[1] == "(1 release(s) with nothing recorded in that time left out)"
    table = [line.split("   ") for line in lines[3:6]]
    assert [[c.strip() for c in row if c.strip()][:7] for row in table] == [
        [
            "NAMESPACE",
            "RELEASES",
            "ON TRACK",
            "ATTENTION",
            "OFF TRACK",
            "NO KPIS",
            "REGRESSIONS OPEN",
        ],
        ["ml", "1", "0", "0", "1", "0", "2"],
        ["shop", "1", "0", "0", "1", "0", "0"],
    ]
    assert lines[6].split()[:8] == [
        "(all)",
        "2",
        "0",
        "0",
        "2",
        "0",
        "2",
        "modelrelease/fraud-detector-7",
    ]
    worst = rows(text, "Worst deltas")
    assert [r[2] for r in worst[1:]] == [
        "error-rate",
        "checkout-availability",
        "p95-latency",
        "latency-vs-baseline",
        "approval-rate",
    ]
    assert worst[1][6:] == ["+0.011 (+55.0%)", "+0.027 (+675.0%)", "off_track", "confirmed"]
    regressions = rows(text, "Regressions open:")
    assert [r[2:5] for r in regressions[1:]] == [
        ["error-rate", "critical", "confirmed"],
        ["p95-latency", "warning", "detected"],
    ]
    assert "KPIs:" not in text


def test_wide_lists_every_kpi_and_the_releases_without() -> None:
    text = render_board(build_board(objects(), NOW, since=timedelta(days=30)), wide=True)
    every = rows(text, "KPIs:")
    assert len(every) == 1 + 4 + 3 + 1  # header, web's 4, fraud-detector's 3, old's none
    assert every[-1][:3] == ["shop", "rollout/old", "-"]


def test_an_empty_board_says_so() -> None:
    text = render_board(build_board([], NOW, since=timedelta(days=7)))
    assert text.splitlines()[-1] == "No releases to score."


def test_json_document() -> None:
    doc = board_document(build_board(objects(), NOW, since=timedelta(days=7)))
    assert doc["since"] == 7 * 86400
    assert doc["attentionBand"] == 0.1
    assert doc["overall"] | {"worst": None} == {
        "releases": 2,
        "onTrack": 0,
        "attention": 0,
        "offTrack": 2,
        "noKpis": 0,
        "openRegressions": 2,
        "worst": None,
    }
    assert doc["overall"]["worst"]["name"] == "error-rate"
    assert [r["name"] for r in doc["regressionsOpen"]] == ["error-rate", "p95-latency"]
    web = next(r for r in doc["releases"] if r["name"] == "web")
    latency = next(k for k in web["kpis"] if k["name"] == "latency-vs-baseline")
    assert latency["status"] == "attention"
    assert latency["reference"] == pytest.approx(0.215)
    assert json.loads(json.dumps(doc)) == doc


# ------------------------------------------------------------------------- the command


def run_with(
    cluster: FakeCluster, *argv: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(report_commands, "now", lambda: NOW)
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err, connector=lambda *_: cluster, environ={})
    return code, out.getvalue(), err.getvalue()


def cluster() -> FakeCluster:
    return FakeCluster(*(obj for _, obj in objects()))


def test_scoreboard_all_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_with(cluster(), "scoreboard", "-A", monkeypatch=monkeypatch)
    assert (code, err) == (0, "")
    assert out.startswith("Scoreboard: 2 release(s) active in the last 7d")


def test_scoreboard_of_one_namespace_with_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_with(
        cluster(),
        "scoreboard",
        "-n",
        "shop",
        "--since",
        "30d",
        "--attention-band",
        "60%",
        "-o",
        "json",
        monkeypatch=monkeypatch,
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["attentionBand"] == pytest.approx(0.6)
    assert list(doc["namespaces"]) == ["shop"]
    assert doc["overall"]["releases"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--since", "soon"], "invalid duration 'soon'", id="bad-since"),
        pytest.param(["--since", "0d"], "is not a positive duration", id="zero-since"),
        pytest.param(["--attention-band=-5%"], "between 0% and 1000%", id="negative-band"),
        pytest.param(["--attention-band", "lots"], "is not a band", id="bad-band"),
        pytest.param(["-o", "yaml"], "invalid choice", id="bad-output"),
    ],
)
def test_bad_flags_are_refused_before_anything_is_read(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*_: object) -> FakeCluster:
        raise AssertionError("no connection for a bad argument")

    with pytest.raises(SystemExit) as exit_:
        run(["scoreboard", *argv], io.StringIO(), io.StringIO(), connector=refuse, environ={})
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_since_takes_days_and_durations() -> None:
    assert report_commands.parse_since("7d") == timedelta(days=7)
    assert report_commands.parse_since("1d12h") == timedelta(hours=36)
    assert report_commands.parse_since("90m") == timedelta(minutes=90)
