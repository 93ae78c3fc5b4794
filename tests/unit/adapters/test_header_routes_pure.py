"""The bookkeeping of the operator's header routes on a routing object (pure): what the
annotation records, which rules are the operator's, and that people's rules are kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollwise.adapters.traffic.headers import ANNOTATION, in_effect, recorded, replaced
from rollwise.core.traffic import HeaderMatch, HeaderRoute, MatchKind

BETA = HeaderRoute("beta", (HeaderMatch("x-segment", MatchKind.EXACT, "beta"),))
GOLD = HeaderRoute("gold", (HeaderMatch("x-tier", MatchKind.REGEX, "^gold$"),))


def render(route: HeaderRoute) -> dict[str, Any]:
    return {"name": f"rule-{route.name}", "to": "canary"}


def obj(annotation: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web"}
    if annotation is not None:
        meta["annotations"] = {ANNOTATION: annotation}
    return {"metadata": meta}


@pytest.mark.parametrize(
    "annotation",
    [None, "", "not json", '{"name": "x"}', '[{"match": []}]', '[{"name": "b", "match": [1]}]'],
)
def test_an_unreadable_annotation_records_nothing(annotation: str | None) -> None:
    assert recorded(obj(annotation)) == []


def test_routes_round_trip_through_the_annotation() -> None:
    entries, value = replaced(obj(None), [{"name": "people"}], (BETA, GOLD), render, first=True)
    assert value is not None
    assert [HeaderRoute.from_wire(r) for r in json.loads(value)] == [BETA, GOLD]
    assert entries == [render(BETA), render(GOLD), {"name": "people"}]
    assert in_effect(obj(value), entries, render) == (BETA, GOLD)


def test_replacing_keeps_peoples_rules_and_removes_only_the_operators() -> None:
    before = obj(json.dumps([BETA.to_wire(), GOLD.to_wire()]))
    people = {"name": "people", "to": "canary"}
    entries = [people, render(BETA), render(GOLD)]
    kept, value = replaced(before, entries, (GOLD,), render, first=False)
    assert kept == [people, render(GOLD)]
    assert value == json.dumps([GOLD.to_wire()])
    cleared, none = replaced(before, entries, (), render, first=False)
    assert cleared == [people]
    assert none is None  # the annotation is removed


def test_a_recorded_route_whose_rule_is_gone_is_not_in_effect() -> None:
    annotated = obj(json.dumps([BETA.to_wire(), GOLD.to_wire()]))
    assert in_effect(annotated, [render(GOLD)], render) == (GOLD,)
    # An unrecorded rule that happens to look like one is not the operator's.
    assert in_effect(obj(None), [render(BETA)], render) == ()
