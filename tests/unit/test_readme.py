"""The README tells the truth about the code: its event reasons table is the core's."""

from __future__ import annotations

from hack.gen_reasons_table import README, render
from rollwise.core.reasons import ALL_REASONS


def test_readme_reason_table_matches_the_core() -> None:
    current = README.read_text(encoding="utf-8")
    assert render(current) == current, "run: python -m hack.gen_reasons_table"


def test_every_reason_is_listed_once() -> None:
    text = README.read_text(encoding="utf-8")
    names = [r.name for r in ALL_REASONS]
    assert len(names) == len(set(names))
    for name in names:
        assert text.count(f"| `{name}` |") == 1, name


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make test" in text
    assert "make demo" in text
