"""The ``report`` documents (:mod:`rollwise.cli.report`) as text and as Markdown: the
decision report (:func:`render_fleet`) and a release's record (:func:`render_release_report`).

Pure: a document in, a string out (ending with a newline). Markdown tables escape ``|`` in
cells; text tables are aligned columns like the plugin's other views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rollwise.cli.common import KIND_WORDS, KINDS
from rollwise.cli.scoreboard import delta_text, number_text
from rollwise.cli.text import table
from rollwise.core.scoreboard import KpiDelta


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return number_text(value)
    return " ".join(str(value).split()).replace("|", "\\|")


def _grid(header: Sequence[str], rows: Sequence[Sequence[object]], markdown: bool) -> list[str]:
    cells = [[_cell(v) for v in row] for row in rows]
    if markdown:
        return [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(row) + " |" for row in cells),
        ]
    return table(header, cells, "  ")


def _title(text: str, level: int, markdown: bool) -> list[str]:
    if markdown:
        return [f"{'#' * level} {text}", ""]
    return [text, "=" * len(text) if level == 1 else "-" * len(text)]


def _section(
    title: str, header: Sequence[str], rows: Sequence[Sequence[object]], markdown: bool, none: str
) -> list[str]:
    lines = ["", *_title(title, 2, markdown)]
    if not rows:
        return [*lines, none]
    return [*lines, *_grid(header, rows, markdown)]


def _delta(value: object) -> str:
    d = value if isinstance(value, Mapping) else None
    if not d:
        return "-"
    return delta_text(KpiDelta(float(d["absolute"]), d.get("relative")))


def _rel(item: Mapping[str, Any]) -> str:
    return f"{item['namespace']}/{KIND_WORDS_BY_KIND[item['kind']]}/{item['name']}"


def render_fleet(doc: Mapping[str, Any], *, markdown: bool = False) -> str:
    """The decision report as text or Markdown."""
    window, summary = doc["window"], doc["summary"]
    lines = _title(f"Rollwise decision report: last {window['since']}", 1, markdown)
    lines.append(f"From {window['from']} to {window['to']}, {doc['releases']} release(s) read.")
    actions = ", ".join(f"{n} {a}" for a, n in sorted(summary["decisionsByAction"].items()))
    regressions = summary["regressions"]
    bullet = "- " if markdown else "  "
    lines += [
        "",
        f"{bullet}Decisions made: {summary['decisions']}" + (f" ({actions})" if actions else ""),
        f"{bullet}Rollbacks: {summary['rollbacks']}",
        f"{bullet}Regressions: {regressions['confirmed']} confirmed, "
        f"{regressions['false_positive']} false positive(s), {regressions['open']} open"
        + (f", {regressions['cleared']} cleared" if regressions.get("cleared") else ""),
        f"{bullet}Critical items: {summary['critical']}",
        f"{bullet}Overrides: {summary['overrides']}",
    ]
    lines += _section(
        "Top critical items",
        ["TIME", "RELEASE", "SOURCE", "ACTION", "CODE", "METRIC", "MESSAGE"],
        [
            [i["at"], _rel(i), i["source"], i["action"], i["code"], i["metric"], i["message"]]
            for i in doc["critical"]
        ],
        markdown,
        "None.",
    )
    lines += _section(
        "Decisions",
        ["TIME", "RELEASE", "ACTION", "CONFIDENCE", "MESSAGE"],
        [
            [i["time"], _rel(i), i["action"], i["confidence"], i["message"]]
            for i in doc["decisions"]
        ],
        markdown,
        "None recorded in the window.",
    )
    lines += _section(
        "Rollbacks",
        ["TIME", "RELEASE", "REASON", "MESSAGE"],
        [[i["time"], _rel(i), i["reason"], i["message"]] for i in doc["rollbacks"]],
        markdown,
        "None recorded in the window.",
    )
    lines += _section(
        "Regressions",
        ["TIME", "RELEASE", "KPI", "OUTCOME", "SEVERITY", "REASON", "VALUE", "PREVIOUS"],
        [
            [
                i["at"],
                _rel(i),
                i["kpi"],
                i["outcome"],
                i["severity"],
                i["reason"],
                i["value"],
                i["previous"],
            ]
            for i in doc["regressions"]
        ],
        markdown,
        "None in the window.",
    )
    lines += _section(
        "Overrides",
        ["TIME", "RELEASE", "DECISION", "BY", "CONFIRMED BY", "REASON"],
        [
            [i["at"], _rel(i), i["decision"], i["user"], i["confirmedBy"], i["reason"]]
            for i in doc["overrides"]
        ],
        markdown,
        "None recorded in the window.",
    )
    lines += ["", *_title("Coverage", 2, markdown), doc["coverage"]]
    return "\n".join(lines) + "\n"


#: The plugin's word for each kind as the documents name it.
KIND_WORDS_BY_KIND = {KINDS[p]: w for p, w in KIND_WORDS.items()}


def render_release_report(doc: Mapping[str, Any], *, markdown: bool = False) -> str:
    """A release's record as text or Markdown."""
    word = KIND_WORDS_BY_KIND[doc["kind"]]
    lines = _title(f"Release record: {word} {doc['namespace']}/{doc['name']}", 1, markdown)
    facts = [("Outcome", doc["outcome"])]
    if doc.get("version"):
        facts.append(("Version", doc["version"]))
    facts += [
        ("Stable revision", doc.get("stableRevision")),
        ("Canary revision", doc.get("canaryRevision")),
        ("First recorded", doc.get("firstRecorded")),
        ("Generated", doc["generatedAt"]),
    ]
    bullet = "- " if markdown else ""
    lines += [f"{bullet}{k}: {_cell(v)}" for k, v in facts]
    if doc["stages"]:
        lines += _section(
            "Stages",
            ["TIME", "FROM", "TO", "REASON", "BY", "MESSAGE"],
            [
                [s["at"], s["from"], s["stage"], s["reason"], s["user"], s["message"]]
                for s in doc["stages"]
            ],
            markdown,
            "",
        )
    lines += ["", *_title("Canary steps", 2, markdown)]
    child = doc.get("canaryRollout")
    if child:
        lines.append(
            f"The canary runs as the Rollout {child}: its steps are that Rollout's record "
            f"(kubectl rollwise report rollout {child} -n {doc['namespace']})."
        )
    if not doc["steps"]:
        lines.append("No step recorded (no canary in the record).")
    for step in doc["steps"]:
        head = (
            f"Step {step['step']}: started {_cell(step['startedAt'])}, "
            f"ended {_cell(step['endedAt'])}"
        )
        lines += ["", *(_title(head, 3, markdown) if markdown else [head])]
        if step.get("metrics") is not None:
            verdict = step.get("analysisVerdict") or "running"
            lines += [f"Analysis: {verdict}", *([""] if markdown else [])]
            lines += _grid(
                [
                    "METRIC",
                    "CANARY",
                    "CONTROL",
                    "CONTROL VALUE",
                    "TARGET",
                    "DELTA",
                    "STATUS",
                    "VERDICT",
                ],
                [
                    [
                        m["metric"],
                        m["canary"],
                        m["control"],
                        m["controlValue"],
                        m["target"],
                        _delta(m["delta"]),
                        m["status"],
                        m["verdict"] or "running",
                    ]
                    for m in step["metrics"]
                ],
                markdown,
            )
        else:
            lines.append("Metrics: not kept (status keeps the current step's analysis only).")
        force = step.get("decisionInForce")
        if force and markdown:
            lines.append("")
        if force:
            codes = ", ".join(f"{r['severity']} {r['code']}" for r in force["reasons"]) or "none"
            lines.append(
                f"{bullet}Decision in force: {force['action']} at {force['confidence']} confidence "
                f"({force['mode'] or 'auto'} mode, decided {force['decidedAt']}); reasons: {codes}"
            )
        if step["events"]:
            lines.append("Events:" if not markdown else "")
            lines += _grid(
                ["TIME", "TYPE", "REASON", "MESSAGE"],
                [[e["time"], e["type"], e["reason"], e["message"]] for e in step["events"]],
                markdown,
            )
    lines += _section(
        "Other events (no step)",
        ["TIME", "TYPE", "REASON", "MESSAGE"],
        [[e["time"], e["type"], e["reason"], e["message"]] for e in doc["unstepped"]],
        markdown,
        "None recorded.",
    )
    lines += _section(
        "Approvals",
        ["TIME", "ROLE", "USER"],
        [[a["at"], a["role"], a["user"]] for a in doc["approvals"]],
        markdown,
        "None recorded.",
    )
    lines += _section(
        "Overrides",
        ["TIME", "DECISION", "BY", "CONFIRMED BY", "TARGET", "REASON"],
        [
            [o["at"], o["decision"], o["user"], o["confirmedBy"], o["target"], o["reason"]]
            for o in doc["overrides"]
        ],
        markdown,
        "None recorded.",
    )
    watch = doc.get("postPromotion")
    lines += ["", *_title("After promotion", 2, markdown)]
    if watch is None:
        lines.append("No post-promotion watch recorded.")
    else:
        lines.append(
            f"{bullet}Watch {_cell(watch['phase'])} from {_cell(watch['startedAt'])} to "
            f"{_cell(watch['endsAt'])}; previous revision {_cell(watch['previousRevision'])}; "
            f"action {_cell(watch['action'])}"
        )
        lines += _grid(
            ["KPI", "STATE", "STATUS", "VALUE", "TARGET", "PREVIOUS", "VS PREVIOUS", "SEVERITY"],
            [
                [
                    k["name"],
                    k["state"],
                    k["status"],
                    k["value"],
                    k["target"],
                    k["reference"],
                    _delta(k["referenceDelta"]),
                    k["severity"],
                ]
                for k in watch["kpis"]
            ],
            markdown,
        )
    lines += ["", *_title("Coverage", 2, markdown), doc["coverage"]]
    return "\n".join(lines) + "\n"


__all__ = ["render_fleet", "render_release_report"]
