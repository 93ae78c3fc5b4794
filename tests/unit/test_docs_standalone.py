"""The project's documentation stands alone: what a user reads (the README, docs/, the
examples and every other Markdown file in the repository) names no file the user does not have.

Two rules: no reference to notes kept outside the repository (``DESIGN.md``, ``STYLE.md``,
``DESIGN §N``, a sibling ``../shared`` folder, an absolute path on a build machine), and every
relative Markdown link resolves to a file or folder inside the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: References to what is not in a clone of the repository.
OUTSIDE = re.compile(
    r"\bDESIGN(?:\.md|\s*§)|\bSTYLE\.md\b|\.\./shared\b|(?<![\w.])/work/\w",
)
#: ``[text](target)`` Markdown links; the target up to a space, ``#`` or ``)``.
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def _documents() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = [
        REPO / name
        for name in listed
        if name.endswith(".md") or name.startswith(("docs/", "examples/"))
    ]
    return sorted(p for p in found if p.is_file())


DOCUMENTS = _documents()


def test_the_documents_are_found() -> None:
    names = {p.relative_to(REPO).as_posix() for p in DOCUMENTS}
    assert {"README.md", "docs/lab.md", "examples/README.md"} <= names


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_reference_to_files_outside_the_repository(path: Path) -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "users do not have these files:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "path",
    [p for p in DOCUMENTS if p.suffix == ".md"],
    ids=lambda p: p.relative_to(REPO).as_posix(),
)
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    broken = []
    for target in LINK.findall(path.read_text(errors="replace")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        resolved = (path.parent / target).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(REPO)} links to what the repository lacks: {broken}"


@pytest.mark.parametrize(
    "line",
    [
        "see DESIGN.md §6",
        "the same rule (DESIGN §4)",
        "as STYLE.md says",
        "in ../shared/notes.md",
        "cat /work/main/README.md",
    ],
)
def test_the_rule_catches_outside_references(line: str) -> None:
    assert OUTSIDE.search(line)


@pytest.mark.parametrize("line", ["docs/design.md", "a DESIGNER", "/workspace/x", "./work/y"])
def test_the_rule_leaves_other_words_alone(line: str) -> None:
    assert not OUTSIDE.search(line)
