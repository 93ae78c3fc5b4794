"""The ModelRelease views: ``render_release`` and the ModelReleases table, over statuses built
with the core's models, plus an empty, an unreadable and an invalid one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollwise.cli import records
from rollwise.cli.render import ASCII
from rollwise.cli.render_release import (
    MAX_HISTORY_SHOWN,
    read_status,
    render_release,
    render_release_table,
    short_digest,
)
from rollwise.core.modelrelease.status import HistoryEntry, ModelReleaseStatus, Stage
from tests.unit.cli import cli_builders as b
from tests.unit.cli import release_builders as r


def cells(line: str) -> list[str]:
    """A table row split on its column gaps (three spaces or more)."""
    return [c.strip() for c in line.strip().split("   ") if c.strip()]


def section(text: str, title: str) -> list[str]:
    """The lines of the section starting with ``title`` up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def header(text: str) -> list[str]:
    return text.split("\n\n", 1)[0].splitlines()


def view(status: ModelReleaseStatus | dict[str, Any] | None, **kwargs: Any) -> str:
    events = kwargs.pop("events", [])
    symbols = kwargs.pop("symbols", None)
    obj = r.release(status, **kwargs)
    if symbols is not None:
        return render_release(obj, events, b.NOW, symbols=symbols)
    return render_release(obj, events, b.NOW)


def test_staging_canary_header() -> None:
    text = view(r.staging_canary())
    assert header(text) == [
        "Name:        fraud-detector-7",
        "Namespace:   ml",
        "Stage:       Staging",
        "Phase:       Progressing",
        f"Message:     {r.STAGING_MESSAGE}",
        "Model:       fraud-detector, version 7",
        "Artifact:    s3://models/fraud-detector/7 (sha256:9e99d0f91dbc)",
        "Change:      normal, ticket CHG-1042",
        f"Serving:     child Rollout {r.CHILD} (kubectl rollwise get rollout {r.CHILD})",
        "Canary:      step 3/5 (setWeight 50%), 50% of traffic to version 7",
        "Alias:       production (ConfigMap model-aliases): points at version 6 "
        "(not flipped to 7 yet)",
    ]


def test_staging_canary_sections() -> None:
    annotations = r.approval_records(("security", "alice", "7", 100))
    text = view(r.staging_canary(), annotations=annotations)
    assert [cells(line) for line in section(text, "Analysis")[1:]] == [
        ["METRIC", "VALUE", "RESULT"],
        ["error-ratio", "0.004", "RUNNING (1/3)"],
    ]
    assert section(text, "Analysis")[0] == (
        f"Analysis (step 3/5, revision {r.REVISION}, started 60s ago): RUNNING"
    )
    assert [cells(line) for line in section(text, "Gates:")[1:]] == [
        ["NAME", "STATUS", "CHECKED", "WAIVER", "MESSAGE"],
        ["artifact-digest", "Passed", "30s", "sha256 matches spec"],
        [
            "sbom",
            "Waived",
            "30s",
            "expires in 23h",
            "waived by carol: CVE-2026-1 triaged (was Failed: 1 critical vulnerability)",
        ],
        ["approvals", "Pending", "30s", "waiting for security, product"],
        ["freeze-window", "Pending", "-", "not evaluated yet"],
    ]
    approvals = section(text, "Approvals")
    assert approvals[0] == "Approvals (required: security, product; waiting for product):"
    assert [cells(line) for line in approvals[1:]] == [
        ["ROLE", "USER", "VERSION", "AGE"],
        ["security", "alice", "7", "100s", "recorded"],
    ]
    assert [cells(line) for line in section(text, "History:")[1:]] == [
        ["AGE", "CHANGE", "REASON", "USER", "MESSAGE"],
        [
            "60m",
            "Candidate",
            "ReleaseCreated",
            "-",
            "model fraud-detector version 7 is a Candidate",
        ],
        [
            "15m",
            "Candidate → Staging",
            "Staged",
            "-",
            "version 7 moved to Staging: gates passed (artifact-digest, sbom)",
        ],
    ]
    conditions = [cells(line) for line in section(text, "Conditions:")[1:]]
    # The phase message is at the top; conditions repeating it leave it out.
    assert conditions[1] == ["Ready", "False", "Staging", "10m"]
    assert conditions[3] == ["GatesPassed", "False", "Waiting", "15m", "approvals: waiting"]
    assert text.endswith("Events:  <none>\n")


def test_production_is_verified_with_counted_approvals() -> None:
    text = view(r.production(), events=[b.event("PromotedToProduction", "alias flipped", 300)])
    assert "Canary:      passed: version 7 serves all traffic" in text
    assert (
        "Alias:       production (ConfigMap model-aliases): points at version 7 "
        "(verified: read back), previous 6"
    ) in text
    approvals = section(text, "Approvals")
    assert approvals[0] == "Approvals (required: security, product):"
    assert [cells(line) for line in approvals[1:]] == [
        ["ROLE", "USER", "VERSION", "AGE"],
        ["security", "alice", "7", "8m20s"],
        ["product", "bob", "7", "7m30s"],
    ]
    history = [cells(line) for line in section(text, "History:")[1:]]
    assert history[-1][:4] == ["5m", "Approved → Production", "PromotedToProduction", "-"]
    assert history[-2][3] == "alice, bob"
    assert "WAIVER" not in section(text, "Gates:")[1]
    assert [cells(line)[:3] for line in section(text, "Events:")] == [
        ["Events:"],
        ["AGE", "TYPE", "REASON"],
        ["5m", "Normal", "PromotedToProduction"],
    ]


def test_recorded_approval_matching_a_counted_one_is_shown_once() -> None:
    annotations = r.approval_records(("security", "alice", "7", 500), ("product", "eve", "6", 50))
    text = view(r.production(), annotations=annotations)
    assert [cells(line) for line in section(text, "Approvals")[1:]] == [
        ["ROLE", "USER", "VERSION", "AGE"],
        ["security", "alice", "7", "8m20s"],
        ["product", "bob", "7", "7m30s"],
        ["product", "eve", "6", "50s", "recorded, not this version"],
    ]


def test_revoked_release() -> None:
    text = view(r.revoked(), symbols=ASCII)
    lines = header(text)
    assert "Stage:       Revoked" in lines
    assert "Canary:      revoked: traffic taken off version 7" in lines
    assert (
        "Alias:       production (ConfigMap model-aliases): points at version 6 "
        "(restored to the previous version)"
    ) in lines
    assert "Revoked:     by dave, 2m ago, from Production: wrong training data" in lines
    history = [cells(line) for line in section(text, "History:")]
    assert history[-1][:4] == ["2m", "Production -> Revoked", "ReleaseRevoked", "dave"]
    # Finished: no role is awaited any more.
    assert section(text, "Approvals")[0] == "Approvals (required: security, product):"


def test_kserve_rolled_back() -> None:
    text = view(r.kserve_failed(), kserve=True)
    lines = header(text)
    assert "Serving:     InferenceService fraud-detector (KServe canaryTrafficPercent)" in lines
    assert (
        "Canary:      failed: metric error-ratio = 0.210 failed successCondition 'result < 0.02'"
    ) in lines
    analysis = section(text, "Analysis")
    assert analysis[0].endswith("): FAIL")
    assert [cells(line) for line in analysis[2:]] == [
        ["METRIC", "VALUE", "RESULT"],
        ["error-ratio", "0.210", "FAIL (1/3, 1 failed)"],
    ]
    # A finished release shows the gates it recorded, none invented.
    assert "Gates:  <none evaluated yet>" in text


def test_no_status_yet() -> None:
    text = view(None)
    lines = header(text)
    assert lines[2:3] == ["Stage:       <no status yet> (is the Rollwise operator running?)"]
    assert "Canary:      not started (gates first)" in lines
    assert "Alias:       production (ConfigMap model-aliases): not read yet" in lines
    assert "Gates:  <none evaluated yet>" in text
    assert "Approvals (required: security, product; waiting for security, product):  <none>" in text
    assert "History:  <none>" in text
    assert "Conditions:" not in text


def test_empty_status_is_no_status() -> None:
    assert view({}) == view(None)


def test_unreadable_status_entries_are_named_and_the_rest_shown() -> None:
    good = r.staging_canary().to_wire()
    raw: dict[str, Any] = {
        **good,
        "gates": [{"name": "sbom"}, *good["gates"][:1]],
        "serving": "oops",
        "history": [*good["history"], {"stage": "Nowhere"}],
        "approvals": {"role": "security"},
        "phase": 3,
    }
    text = view(raw)
    lines = header(text)
    assert "Phase:       <unknown>" in lines
    assert (
        "             (4 unreadable status field(s) not shown: gates[0], history[2], approvals, "
        "serving)"
    ) in lines
    assert "Canary:      -" in lines
    gates = [cells(line)[:2] for line in section(text, "Gates:")[1:]]
    assert gates == [
        ["NAME", "STATUS"],
        ["artifact-digest", "Passed"],
        ["sbom", "Pending"],
        ["approvals", "Pending"],
        ["freeze-window", "Pending"],
    ]
    assert len(section(text, "History:")) == 4


def test_status_of_the_wrong_shape_still_renders() -> None:
    text = view({"stage": ["Staging"], "conditions": "none", "alias": {"name": 3}})
    assert "Stage:       <unknown>" in text
    assert "(2 unreadable status field(s) not shown: conditions, alias)" in text


def test_invalid_spec_is_listed() -> None:
    obj = r.release(None)
    del obj["spec"]["serving"]["template"]
    obj["spec"]["artifact"]["digest"] = "md5:abc"
    text = render_release(obj, [], b.NOW)
    assert "Artifact:    s3://models/fraud-detector/7 (md5:abc)" in text
    assert "Serving:     - (spec.serving sets neither template nor inferenceServiceRef)" in text
    invalid = section(text, "Invalid spec:")
    assert len(invalid) == 2
    assert invalid[1].startswith("  - spec.artifact.digest: ")


def test_observed_generation_behind() -> None:
    obj = r.release(r.staging_canary())
    obj["metadata"]["generation"] = 2
    text = render_release(obj, [], b.NOW)
    assert (
        "             (status is of generation 1, spec is at 2: the operator has not caught up yet)"
    ) in text


def test_history_shows_the_newest_entries() -> None:
    entries = [
        HistoryEntry(stage=Stage.CANDIDATE, reason=f"R{i}", time=b.ago(1000 - i))
        for i in range(MAX_HISTORY_SHOWN + 3)
    ]
    status = ModelReleaseStatus(stage=Stage.CANDIDATE, history=entries)
    history = section(view(status), "History")
    assert history[0] == "History (3 earlier entries not shown):"
    assert [cells(line)[2] for line in history[2:]] == [
        f"R{i}" for i in range(3, MAX_HISTORY_SHOWN + 3)
    ]


def test_queued_and_alias_flip_pending() -> None:
    status = r.staging_canary().model_copy(
        update={
            "stage": Stage.APPROVED,
            "queued_behind": "fraud-detector-6",
            "alias": r.AliasStatus(
                name="production",
                current_version="6",
                flip_requested=True,
                last_error="ConfigMap model-aliases: connection refused",
            ),
        }
    )
    lines = header(view(status))
    assert "Queued:      behind fraud-detector-6 (same model and alias)" in lines
    assert (
        "Alias:       production (ConfigMap model-aliases): points at version 6 (flip to 7 "
        "requested, not read back yet); last error: ConfigMap model-aliases: connection refused"
    ) in lines


@pytest.mark.parametrize(
    ("digest", "short"),
    [
        pytest.param(r.DIGEST, "sha256:9e99d0f91dbc", id="sha256"),
        pytest.param("", "-", id="none"),
        pytest.param("0123456789abcdef", "0123456789ab", id="bare"),
    ],
)
def test_short_digest(digest: str, short: str) -> None:
    assert short_digest(digest) == short


def test_read_status_keeps_the_approval_version_when_present() -> None:
    status = read_status(
        {"approvals": [{"role": "security", "user": "alice", "version": "7", "at": b.stamp(5)}]}
    )
    assert [(a.record.role, a.version) for a in status.approvals] == [("security", "7")]
    assert status.unreadable == []


def test_release_table() -> None:
    fresh = r.release(None)
    fresh["metadata"].update(name="fraud-detector-8", creationTimestamp=b.stamp(5))
    fresh["spec"]["version"] = "8"
    del fresh["spec"]["alias"]
    other = r.release(r.production())
    other["metadata"].update(name="churn-3", namespace="analytics")
    items = [fresh, r.release(r.staging_canary()), other]
    lines = render_release_table(items, b.NOW, all_namespaces=False)
    assert [cells(line) for line in lines] == [
        ["NAME", "STAGE", "PHASE", "MODEL", "VERSION", "ALIAS", "AGE"],
        ["churn-3", "Production", "Healthy", "fraud-detector", "7", "production", "60m"],
        ["fraud-detector-7", "Staging", "Progressing", "fraud-detector", "7", "production", "60m"],
        ["fraud-detector-8", "<none>", "-", "fraud-detector", "8", "production", "5s"],
    ]
    wide = render_release_table(items, b.NOW, all_namespaces=True)
    assert cells(wide[0])[:2] == ["NAMESPACE", "NAME"]
    assert [cells(line)[:2] for line in wide[1:]] == [
        ["analytics", "churn-3"],
        ["ml", "fraud-detector-7"],
        ["ml", "fraud-detector-8"],
    ]


# --------------------------------------------------------------------------------------------
# The identity records the read-back looks for


def test_records_are_read_tolerantly() -> None:
    annotations = {
        records.APPROVALS: json.dumps(
            [
                {"role": "security", "user": "alice", "version": "7", "at": "t", "sig": "ab"},
                {"role": "product"},
                "junk",
            ]
        ),
        records.WAIVERS: "not json",
        records.REVOCATION: json.dumps({"id": "r1", "reason": "bad", "user": "dave", "at": "t"}),
    }
    assert records.approvals(annotations) == [
        records.RecordedApproval(role="security", user="alice", version="7", at="t")
    ]
    assert records.waivers(annotations) == []
    assert records.revocation_of(annotations, "r1") == records.RecordedRevocation(
        id="r1", reason="bad", user="dave", at="t"
    )
    assert records.revocation_of(annotations, "r2") is None
    assert records.approvals(None) == []


def test_new_records_are_told_from_old_ones() -> None:
    before = r.approval_records(("security", "alice", "7", 60))
    after = r.approval_records(("security", "alice", "7", 60), ("product", "bob", "7", 1))
    found = records.new_approval(before, after, "product", "7")
    assert found is not None
    assert found.user == "bob"
    assert records.new_approval(before, after, "security", "7") is None
    assert records.new_approval(before, after, "product", "6") is None
    waiver = {"gate": "sbom", "reason": "triaged", "user": "carol", "at": "t", "expiresAt": "e"}
    waived = {records.WAIVERS: json.dumps([waiver])}
    got = records.new_waiver({}, waived, "sbom", "triaged")
    assert got == records.RecordedWaiver("sbom", "triaged", "carol", "t", "e")
    assert records.new_waiver(waived, waived, "sbom", "triaged") is None


@pytest.mark.parametrize(
    ("annotations", "line"),
    [
        pytest.param(
            {
                records.REVOCATION: json.dumps(
                    {"id": "r1", "reason": "bad data", "user": "bob", "at": b.stamp(30)}
                )
            },
            "Revoke:      requested by bob 30s ago, not acted on yet: bad data",
            id="recorded",
        ),
        pytest.param(
            {"rollwise.dev/revoke": '{"id": "r1", "reason": "bad data"}'},
            "Revoke:      requested (unsigned: user unknown), not acted on yet",
            id="unsigned",
        ),
    ],
)
def test_revoke_not_acted_on_yet(annotations: dict[str, str], line: str) -> None:
    assert line in header(view(r.staging_canary(), annotations=annotations))
    assert line in header(view(None, annotations=annotations))
    # Once revoked, the status says it all.
    assert "Revoke: " not in view(r.revoked(), annotations=annotations)


@pytest.mark.parametrize(
    ("revalidate_by", "line"),
    [
        pytest.param(None, None, id="no-date"),
        pytest.param(
            "2030-01-01",
            "Revalidate:  by 2030-01-01T00:00:00Z (in ",
            id="scheduled",
        ),
        pytest.param(
            "2020-01-01",
            "Revalidate:  OVERDUE since 2020-01-01T00:00:00Z (",
            id="overdue",
        ),
    ],
)
def test_revalidation_date_is_shown(revalidate_by: str | None, line: str | None) -> None:
    obj = r.release(r.production())
    if revalidate_by is not None:
        obj["spec"]["revalidateBy"] = revalidate_by
    text = render_release(obj, [], b.NOW)
    shown = [x for x in header(text) if x.startswith("Revalidate:")]
    if line is None:
        assert shown == []
    else:
        assert len(shown) == 1
        assert shown[0].startswith(line)
    if revalidate_by == "2020-01-01":
        assert shown[0].endswith(
            "ago): no further promotion until revalidated and spec.revalidateBy moved forward"
        )
