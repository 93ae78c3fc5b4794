"""Three gates on documents and dates: ``model-card``, ``security-decision`` and
``revalidate-by``. Pure judgement of what was read (the evaluator reads the documents, within
the evidence policy); ``now`` is an argument.

``model-card`` (``spec.gates.modelCard``): the model card must be a mapping, written as JSON,
YAML, or Markdown opening with a YAML front matter block (``---`` ... ``---``, as model
repositories write their README), and carry every field of ``requiredFields``. A field is a
dotted path (``model_details.owners``); it is present when its value is not null, not an empty
string and not an empty list or mapping.

``security-decision`` (``spec.gates.securityDecision``): a JSON object

.. code-block:: json

    {"decision": "PASS", "decidedBy": "security@example.com",
     "decidedAt": "2026-12-01T10:00:00Z", "artifactDigest": "sha256:...", "reason": "..."}

``decision`` must be ``PASS``; ``decidedBy`` names the decider and ``decidedAt`` (RFC 3339, not
later than now plus :data:`CLOCK_SKEW`) when. ``model``, ``version`` and ``artifactDigest``
are optional; when present, each must be the release's (evidence about another artifact is no
evidence about this one).

``revalidate-by`` (``spec.revalidateBy``): Passed until the date (rechecked then), Failed from
it on: the version may not move to a further stage until it is revalidated and the date moved
forward.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import yaml

from rollwise.adapters.gates.outcome import Outcome
from rollwise.core.modelrelease.spec import revalidate_by_time
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.status_model import format_time

#: How far in the future a security decision's ``decidedAt`` may lie (clocks differ).
CLOCK_SKEW = timedelta(minutes=5)
#: The decision that lets a release through.
PASS = "PASS"
#: Characters of a document's own ``reason`` quoted in a message.
MAX_REASON = 200

_NO_EVIDENCE = "no evidence, no promotion"


class UnusableDocument(ValueError):
    """The document cannot be read as the gate's kind of evidence."""


def _front_matter(text: str) -> str | None:
    """The YAML front matter of a Markdown document (None when it has none)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return "\n".join(lines[1:index])
    raise UnusableDocument("its front matter (opened by ---) is never closed")


def read_model_card(raw: bytes) -> Mapping[str, Any]:
    """The fields of a model card (JSON, YAML, or Markdown with YAML front matter)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableDocument("not UTF-8 text") from None
    front = _front_matter(text)
    try:
        loaded: Any = yaml.safe_load(front if front is not None else text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UnusableDocument(f"not JSON or YAML{where}") from None
    if not isinstance(loaded, Mapping):
        raise UnusableDocument(
            "not a mapping of fields (JSON, YAML, or Markdown with a YAML front matter)"
        )
    return loaded


def _present(document: Mapping[str, Any], path: str) -> bool:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return value is not None and value not in ("", [], {})


def check_model_card(raw: bytes, required: Sequence[str], where: str) -> Outcome:
    """Passed when the card is readable and carries every field of ``required``."""
    try:
        card = read_model_card(raw)
    except UnusableDocument as exc:
        return Outcome.failed(f"model card {where} is unusable: {exc}; {_NO_EVIDENCE}")
    missing = [path for path in required if not _present(card, path)]
    if missing:
        noun = "field" if len(missing) == 1 else "fields"
        return Outcome.failed(
            f"model card {where} lacks required {noun} {', '.join(missing)}; {_NO_EVIDENCE}"
        )
    if required:
        return Outcome.passed(
            f"model card {where}: all {len(required)} required fields present "
            f"({', '.join(required)})"
        )
    return Outcome.passed(f"model card {where}: present ({len(card)} top-level fields)")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_security_decision(
    raw: bytes, spec: ModelReleaseSpec, where: str, now: datetime
) -> Outcome:
    """Passed on a PASS decision, with its decider and time, about this release."""
    try:
        doc: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Outcome.failed(f"security decision {where} is not JSON; {_NO_EVIDENCE}")
    if not isinstance(doc, dict):
        return Outcome.failed(f"security decision {where} is not a JSON object; {_NO_EVIDENCE}")
    problems: list[str] = []
    decider = doc.get("decidedBy")
    if not isinstance(decider, str) or not decider.strip():
        problems.append("decidedBy (the decider's identity) is missing")
    decided_at = _parse_time(doc.get("decidedAt"))
    if decided_at is None:
        problems.append("decidedAt is missing or not an RFC 3339 time with an offset")
    elif decided_at > now + CLOCK_SKEW:
        problems.append(f"decidedAt {format_time(decided_at)} is in the future")
    subject = {
        "model": spec.model,
        "version": spec.version,
        "artifactDigest": spec.artifact.digest,
    }
    for key, expected in subject.items():
        if key in doc and doc[key] != expected:
            problems.append(f"{key} is {str(doc[key])[:80]!r}, not this release's {expected!r}")
    if problems:
        return Outcome.failed(
            f"security decision {where} is unusable: {'; '.join(problems)}; {_NO_EVIDENCE}"
        )
    decision = doc.get("decision")
    by = f"by {decider} at {format_time(decided_at)}" if decided_at is not None else ""
    reason = doc.get("reason")
    quoted = f": {str(reason)[:MAX_REASON]}" if isinstance(reason, str) and reason else ""
    if decision != PASS:
        shown = decision if isinstance(decision, str) else json.dumps(decision)
        return Outcome.failed(
            f"security decision {where} is {str(shown)[:40]}, not {PASS} ({by}){quoted}"
        )
    return Outcome.passed(f"security decision {where}: {PASS} {by}{quoted}")


def check_revalidation(spec: ModelReleaseSpec, now: datetime) -> Outcome:
    """Passed before ``spec.revalidateBy`` (rechecked at that time), Failed from it on."""
    due = revalidate_by_time(spec)
    if due is None:
        return Outcome.passed("no revalidation date set")
    if now < due:
        return Outcome.passed(f"revalidate by {format_time(due)}", recheck_at=due)
    return Outcome.failed(
        f"revalidation was due at {format_time(due)}: version {spec.version} may not be "
        "promoted further until it is revalidated and spec.revalidateBy moved forward"
    )


__all__ = [
    "CLOCK_SKEW",
    "PASS",
    "UnusableDocument",
    "check_model_card",
    "check_revalidation",
    "check_security_decision",
    "read_model_card",
]
