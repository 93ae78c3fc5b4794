"""The README tells the truth about the code: its event reason tables are the core's."""

from __future__ import annotations

import pytest

from hack.gen_reasons_table import README, TABLES, render


def test_readme_reason_tables_match_the_core() -> None:
    current = README.read_text(encoding="utf-8")
    assert render(current) == current, "run: python -m hack.gen_reasons_table"


@pytest.mark.parametrize("marker", list(TABLES))
def test_every_reason_is_listed_once(marker: str) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split(f"<!-- {marker}:begin", 1)[1].split(f"<!-- {marker}:end", 1)[0]
    names = [r.name for r in TABLES[marker]]
    assert len(names) == len(set(names))
    for name in names:
        assert section.count(f"| `{name}` |") == 1, name


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make test" in text
    assert "make demo" in text
