"""Mutation testing of the core and the runtime's pass logic with mutmut (``make mutate``).

mutmut imports the mutated code from ``mutants/src`` and finds only ``src/`` (or flat) layouts,
while Rollwise keeps its package under the source root ``operator/``. So this script lays out a
work tree in ``.mutation/`` (git-ignored): the tracked files of the repository as they are now,
plus ``src/rollwise``, a copy of ``operator/rollwise``. mutmut runs there, puts
``mutants/src`` first on ``sys.path`` (ahead of the editable install's ``operator/``), and so
the unit suite exercises the mutated package. Its results in ``.mutation/mutants`` survive from
one run to the next, so an unchanged function is not tested again.

    python -m hack.mutate                          # everything in MUTATED (tens of minutes)
    python -m hack.mutate 'rollwise.core.analysis.*'   # one module (mutmut's name globs)
    python -m hack.mutate --survivors              # test the survivors again (after new tests)
    python -m hack.mutate --report                 # only print the score table of the last runs

The score per module (killed / total, survivors by name) is printed at the end; ``mutmut show
NAME`` run in ``.mutation/`` prints one mutant's diff. docs/testing.md records the score.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"

#: What is mutated (paths in the work tree): the pure core, and the runtime's generic pass
#: skeleton (observe, decide, act, persist once, post events).
MUTATED = (
    "src/rollwise/core/*",
    "src/rollwise/core/rollout/*",
    "src/rollwise/core/modelrelease/*",
    "src/rollwise/runtime/passes.py",
    "src/rollwise/runtime/measuring.py",
    "src/rollwise/runtime/skeleton.py",
)
#: With ``--runtime``: the Rollout and ModelRelease passes too (about 2,200 more mutants, most
#: of them wiring: names of API calls, log fields, metric labels; a few hours on two cores).
RUNTIME = (
    "src/rollwise/runtime/rollout/reconcile.py",
    "src/rollwise/runtime/release/reconcile.py",
)

#: The tests that judge the mutants: the unit suite (no lab, no cluster, no network), less
#: three files whose cost per mutant buys no decision check of their own: the Helm chart's
#: rendering (reaches no mutated code), the benchmark harness's smoke run (13 s, asserts
#: figures), and the crash-consistency replay (30 s for every mutant of ``decide``; it kills
#: the process between writes, and the core's own tables judge the decisions it replays).
#: Leaving tests out can only lower the score, never flatter it.
TESTS = (
    "tests/unit",
    "--ignore=tests/unit/test_chart.py",
    "--ignore=tests/unit/test_bench_smoke.py",
    "--ignore=tests/unit/runtime/test_crash_consistency.py",
)

#: mutmut's exit codes per mutant, as it records them in its ``.meta`` files (mutmut.stats).
#: A timeout counts as killed (the mutant made the tests hang); "no tests" (no unit test reaches
#: the mutated function) counts against the score.
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    2: "interrupted",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
    None: "not checked",
}

#: Seconds after which a test counts as hung under a mutant (the slowest unit test in the
#: selection takes about 6 s on a loaded machine).
HANG_SECONDS = 30

#: Statuses that count as killed.
KILLED = ("killed", "timeout", "caught by type check")

#: ``--sample``: modules with at most this many mutants are tested whole.
SMALL_MODULE = 60
#: ``--sample``: the default seed (docs/testing.md records the sample it drew).
SAMPLE_SEED = 20261207

CONFIG = """\
[mutmut]
source_paths = src/rollwise
only_mutate =
{only}
also_copy =
{copy}
pytest_add_cli_args =
    -p
    no:cacheprovider
pytest_add_cli_args_test_selection =
{tests}
"""


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [name for name in out.split("\0") if name]


def lay_out(mutated: tuple[str, ...]) -> None:
    """Refresh the work tree (keeping ``mutants/``, mutmut's results) from the checkout."""
    WORK.mkdir(exist_ok=True)
    for entry in WORK.iterdir():
        if entry.name == "mutants":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    top_level: set[str] = set()
    for name in tracked_files():
        top_level.add(name.split("/")[0])
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree, not yet committed
        target = WORK / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    shutil.copytree(ROOT / "operator" / "rollwise", WORK / "src" / "rollwise", dirs_exist_ok=True)
    # A run stopped while mutmut wrote a mutated module leaves it empty, and mutmut would keep
    # it (it is newer than its source): remove it, so that it is generated again.
    for module in (WORK / "mutants" / "src").rglob("*.py"):
        if module.name != "__init__.py" and module.stat().st_size == 0:
            module.unlink()
    # mutmut reads setup.cfg when pyproject.toml has no [tool.mutmut]; the paths are the work
    # tree's.
    (WORK / "setup.cfg").write_text(
        CONFIG.format(
            only="\n".join(f"    {pattern}" for pattern in mutated),
            tests="\n".join(f"    {path}" for path in TESTS),
            # everything the unit suite reads (CRDs, chart, examples, README, Dockerfile, ...)
            copy="\n".join(f"    {name}" for name in sorted(top_level)),
        ),
        encoding="utf-8",
    )


def module_of(mutant: str) -> str:
    """``rollwise.core.analysis.x_count__mutmut_3`` -> ``rollwise.core.analysis``."""
    parts = mutant.partition("__mutmut_")[0].split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "x\u01c1")):
            return ".".join(parts[:i])
    return ".".join(parts[:-1])


def metas(mutated: tuple[str, ...]) -> list[Path]:
    """mutmut's result files of the modules in ``mutated`` (a run with ``--runtime`` leaves
    results of more modules behind)."""
    root = WORK / "mutants"
    return [
        meta
        for meta in sorted(root.rglob("*.py.meta"))
        if any(
            fnmatch.fnmatch(str(meta.relative_to(root)).removesuffix(".meta"), pattern)
            for pattern in mutated
        )
    ]


def exit_codes(mutated: tuple[str, ...]) -> dict[str, int | None]:
    """Every mutant of the modules in ``mutated`` and its exit code (None: not run yet)."""
    codes: dict[str, int | None] = {}
    for meta in metas(mutated):
        data = json.loads(meta.read_text(encoding="utf-8"))
        codes.update(data.get("exit_code_by_key", {}))
    return codes


def sample(names: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded random sample of ``names``, drawn per module: every mutant of a module with at
    most SMALL_MODULE of them, else ``fraction`` of them (at least SMALL_MODULE)."""
    by_module: dict[str, list[str]] = defaultdict(list)
    for name in sorted(names):
        by_module[module_of(name)].append(name)
    chosen: list[str] = []
    for module, members in sorted(by_module.items()):
        size = len(members)
        if size > SMALL_MODULE:
            size = max(SMALL_MODULE, round(fraction * size))
        chosen += random.Random(f"{seed}:{module}").sample(members, size)
    return sorted(chosen)


def wilson(killed: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of a kill rate measured on a sample."""
    if total == 0:
        return 0.0, 1.0
    p = killed / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def stratified(
    by_module: dict[str, Counter[str]], sizes: Counter[str], prefix: str
) -> tuple[float, float, float, int, int] | None:
    """The kill rate of all mutants of the modules under ``prefix``, estimated from the tested
    ones of each module weighted by the module's size (exact when every mutant was tested):
    (score, 95% low, 95% high, mutants, tested)."""
    rates: list[tuple[int, int, int]] = []  # (module size, tested, killed)
    for module, counts in by_module.items():
        if not module.startswith(prefix):
            continue
        tested = sum(n for status, n in counts.items() if status != "not checked")
        if tested:
            rates.append((sizes[module], tested, sum(counts[s] for s in KILLED)))
    total = sum(size for size, _, _ in rates)
    if not total:
        return None
    score = sum(size * killed / tested for size, tested, killed in rates) / total
    variance = sum(
        (size / total) ** 2
        * (killed / tested)
        * (1 - killed / tested)
        / tested
        * (1 - tested / size)
        for size, tested, killed in rates
    )
    half = 1.96 * math.sqrt(variance)
    return score, max(0.0, score - half), min(1.0, score + half), total, sum(t for _, t, _ in rates)


def report(codes: dict[str, int | None], chosen: set[str] | None = None) -> None:
    """The score per module over the mutants in ``chosen`` (all when None)."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    sizes: Counter[str] = Counter(module_of(name) for name in codes)
    for name, code in codes.items():
        if chosen is None or name in chosen:
            by_module[module_of(name)][STATUS_BY_EXIT_CODE.get(code, f"exit {code}")] += 1
    print(
        f"\n{'module':34} {'mutants':>7} {'tested':>6} {'killed':>6} {'score':>6} "
        f"{'95% interval':>13}  other"
    )
    for module in sorted(by_module):
        counts = by_module[module]
        killed = sum(counts[s] for s in KILLED)
        tested = sum(n for status, n in counts.items() if status != "not checked")
        low, high = wilson(killed, tested)
        other = ", ".join(
            f"{status} {n}" for status, n in sorted(counts.items()) if status not in KILLED
        )
        score = killed / tested if tested else 0.0
        print(
            f"{module:34} {sizes[module]:7} {tested:6} {killed:6} {score:6.1%} "
            f"{low:6.1%}-{high:5.1%}  {other}"
        )
    for label, prefix in (("core", "rollwise.core."), ("all", "rollwise.")):
        estimate = stratified(by_module, sizes, prefix)
        if estimate is not None:
            score, low, high, mutants, tested = estimate
            print(
                f"{label:34} {mutants:7} {tested:6} {'':6} {score:6.1%} {low:6.1%}-{high:5.1%}"
                + ("  (weighted by module size)" if chosen is not None else "")
            )
    alive = sorted(
        n for n, c in codes.items() if c in (0, 5, 33) and (chosen is None or n in chosen)
    )
    if alive:
        print(f"\nsurvivors and untested ({len(alive)}); `mutmut show NAME` in .mutation/:")
        for name in alive:
            print(f"  {name}  ({STATUS_BY_EXIT_CODE[codes[name]]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("globs", nargs="*", help="mutant name globs, e.g. 'rollwise.core.*'")
    parser.add_argument("--report", action="store_true", help="only print the last results")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="test again only the mutants that survived or that no test reached",
    )
    parser.add_argument(
        "--sample",
        type=float,
        metavar="FRACTION",
        help="test (and score) a seeded random sample of each module's mutants",
    )
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED, help="seed of --sample")
    parser.add_argument(
        "--runtime", action="store_true", help="also the Rollout/ModelRelease passes"
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    mutated = MUTATED + RUNTIME if args.runtime else MUTATED
    codes = exit_codes(mutated)
    chosen = set(sample(list(codes), args.sample, args.seed)) if args.sample else None
    if not args.report:
        names = list(args.globs)
        if args.survivors:
            names += [  # survived, or no test reached it (new tests may)
                n for n, c in codes.items() if c in (0, 5, 33) and (chosen is None or n in chosen)
            ]
        elif chosen is not None:
            names += sorted(n for n in chosen if codes[n] is None)  # the rest is known
        if (args.survivors or chosen is not None) and not names:
            report(codes, chosen)
            return 0
        lay_out(mutated)
        # A mutant that makes a test hang is killed: it sleeps, so mutmut's CPU-time limit
        # would not end it, and the suite's 300 s per test would stall the run.
        env = dict(os.environ, HYPOTHESIS_PROFILE="mutation", PYTEST_TIMEOUT=str(HANG_SECONDS))
        mutmut = Path(sys.executable).with_name("mutmut")
        command = [str(mutmut), "run", "--max-children", str(args.max_children), *names]
        code = subprocess.run(command, cwd=WORK, env=env, check=False).returncode
        if code != 0:
            return code
        codes = exit_codes(mutated)
    report(codes, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
