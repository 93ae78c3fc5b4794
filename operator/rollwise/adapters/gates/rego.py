"""Policy as code: Rego modules of the cluster's policy snapshot, evaluated at a release's
decision points with ``regopy`` (the OPA Rego interpreter, in process: no ``opa`` binary, no
network).

The bundle is the policy snapshot ConfigMap (``ROLLWISE_POLICY_CONFIGMAP``): each ``data`` key
ending in ``.rego`` is a module, each key ending in ``.json`` a JSON object merged into
``data``; other keys are ignored here. Its digest (``rollwise.adapters.gates.policy``) covers
every key, so the ``policy-digest`` gate binds the exact bundle that was evaluated.

Decision points and their packages:

* ``accept`` (Candidate → Staging): ``data.registry.accept``;
* ``promote`` (→ Approved, and on to Production): ``data.registry.promote``;
* ``canary`` (while the canary runs in Staging, on its verdicts): ``data.runtime.canary``.

At each, the package's ``allow`` (``proceed`` at the canary point) must be ``true`` and its
``deny`` (a set or list of strings) empty. A package the bundle does not define says
nothing at that point (the gate passes, saying so). The input document is built by
:func:`decision_input` (docs/gates.md lists it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from regopy import Interpreter, LogLevel, RegoError

from rollwise.adapters.gates.outcome import Outcome, short_digest
from rollwise.adapters.gates.policy import policy_digest
from rollwise.core.modelrelease.observations import Approval, GateResult
from rollwise.core.modelrelease.status import ModelReleaseStatus, Stage
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.status_model import format_time

#: The decision points and the package each one queries.
POINTS: dict[str, str] = {
    "accept": "data.registry.accept",
    "promote": "data.registry.promote",
    "canary": "data.runtime.canary",
}
#: The rule of each point's package that must be ``true``.
RULES: dict[str, str] = {"accept": "allow", "promote": "allow", "canary": "proceed"}
#: Deny messages named in a gate message before "and N more".
MAX_DENIALS = 5
#: Characters of one deny message, and of an evaluation error.
MAX_TEXT = 300


class PolicyError(ValueError):
    """The bundle cannot be loaded or evaluated (a parse error, a conflict, bad JSON data)."""


@dataclass(frozen=True)
class Bundle:
    """The Rego modules and JSON data of a policy snapshot, and the digest of all of it."""

    modules: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    digest: str

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> Bundle:
        items = sorted((data or {}).items())
        return cls(
            modules=tuple((k, v) for k, v in items if k.endswith(".rego")),
            data=tuple((k, v) for k, v in items if k.endswith(".json")),
            digest=policy_digest(data),
        )


@dataclass(frozen=True)
class Verdict:
    """What a package said at a point: None when the bundle does not define it."""

    defined: bool
    allow: bool
    deny: tuple[str, ...]


def evaluate(bundle: Bundle, point: str, document: Mapping[str, Any]) -> Verdict:
    """The verdict of ``point``'s package on the input ``document``."""
    interpreter = Interpreter()
    # The interpreter would print parse errors to standard output (the operator's JSON log):
    # they come back in the exception instead.
    interpreter.log_level = LogLevel.NONE
    try:
        for name, text in bundle.data:
            try:
                loaded = json.loads(text)
            except ValueError as exc:
                raise PolicyError(f"{name} is not JSON: {exc}") from None
            if not isinstance(loaded, dict):
                raise PolicyError(f"{name} is not a JSON object")
            interpreter.add_data(loaded)
        for name, text in bundle.modules:
            interpreter.add_module(name, text)
        interpreter.set_input(dict(document))
        output = interpreter.query(f"x = {POINTS[point]}")
    except RegoError as exc:
        raise PolicyError(_rego_error(str(exc))) from None
    except json.JSONDecodeError as exc:
        # An evaluation error (a function the interpreter does not know, a conflict) comes
        # back as the query's answer, which regopy then fails to read as JSON.
        raise PolicyError(_rego_error(exc.doc)) from None
    if not output.ok():
        raise PolicyError(
            f"the interpreter could not evaluate {POINTS[point]} (conflicting rules, or a "
            "runtime error in a module)"
        )
    text = str(output)
    if text.strip() == "undefined":
        return Verdict(defined=False, allow=False, deny=())
    try:
        result: Any = json.loads(text)["bindings"]["x"]
    except (ValueError, KeyError, TypeError):
        raise PolicyError(_first_line(text)) from None
    if not isinstance(result, dict):
        raise PolicyError(f"{POINTS[point]} is not a package (it is {type(result).__name__})")
    deny = result.get("deny", [])
    if not isinstance(deny, list):
        raise PolicyError(f"{POINTS[point]}.deny is not a set of messages")
    return Verdict(
        defined=True,
        allow=result.get(RULES[point]) is True,
        deny=tuple(str(m) if not isinstance(m, str) else m for m in deny),
    )


_ERROR = re.compile(r"\(error(?:\s+\d+:([^|\s]*)\|[^(]*)?\s*\(errormsg \d+:([^)]*)\)")


def _rego_error(text: str) -> str:
    """The interpreter's errors as ``module: message`` (they come as an s-expression)."""
    found = [f"{where or 'query'}: {what}" for where, what in _ERROR.findall(text)]
    unique = list(dict.fromkeys(found))
    return "; ".join(unique)[:MAX_TEXT] if unique else _first_line(text)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)[:MAX_TEXT] or "unknown error"


def judge(bundle: Bundle, point: str, document: Mapping[str, Any], where: str) -> Outcome:
    """The gate's outcome at ``point``: Passed when allowed with no denial."""
    label = f"policy bundle {where} ({short_digest(bundle.digest)})"
    package = POINTS[point]
    try:
        verdict = evaluate(bundle, point, document)
    except PolicyError as exc:
        return Outcome.failed(
            f"{label} cannot be evaluated at {point}: {exc}; no evidence, no promotion"
        )
    if not verdict.defined:
        return Outcome.passed(f"{label} has no rule at {point} ({package})")
    if verdict.deny:
        shown = [m[:MAX_TEXT] for m in sorted(verdict.deny)[:MAX_DENIALS]]
        more = len(verdict.deny) - len(shown)
        listing = "; ".join(shown) + (f"; and {more} more" if more else "")
        return Outcome.failed(f"{label} denies {point}: {listing}")
    if not verdict.allow:
        return Outcome.failed(
            f"{label} does not allow {point} ({package}.{RULES[point]} is not true)"
        )
    return Outcome.passed(f"{label} allows {point}")


def decision_input(
    point: str,
    *,
    namespace: str,
    name: str,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus | None,
    gates: Sequence[GateResult],
    approvals: Sequence[Approval],
    now: datetime,
) -> dict[str, Any]:
    """The input document of a decision point (its shape is documented in docs/gates.md)."""
    stage = (status.stage if status is not None else None) or Stage.CANDIDATE
    serving = status.serving if status is not None else None
    analysis = serving.analysis if serving is not None else None
    canary: dict[str, Any] = {
        "started": serving is not None,
        "passed": serving.passed if serving is not None else False,
        "failure": serving.failure if serving is not None else None,
        "weight": serving.weight if serving is not None else 0,
        "verdicts": [
            {
                "metric": m.name,
                "verdict": m.verdict.value if m.verdict is not None else None,
                "successful": m.successful,
                "failed": m.failed,
                "inconclusive": m.inconclusive,
            }
            for m in (analysis.metrics if analysis is not None else [])
        ],
    }
    return {
        "point": point,
        "now": format_time(now),
        "release": {
            "namespace": namespace,
            "name": name,
            "stage": stage.value,
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        },
        "change": {"type": spec.change.type.value, "ticket": spec.change.ticket},
        "gates": [
            {"name": g.name, "status": g.status.value, "message": g.message}
            for g in gates
            if not g.name.startswith("policy-")
        ],
        "approvals": [
            {"role": a.role, "user": a.user, "at": format_time(a.at), "version": a.version}
            for a in sorted(approvals, key=lambda a: (a.at, a.role, a.user))
        ],
        "canary": canary,
    }


__all__ = [
    "POINTS",
    "RULES",
    "Bundle",
    "PolicyError",
    "Verdict",
    "decision_input",
    "evaluate",
    "judge",
]
