"""``python -m hack.bench.cli_startup``: how long ``kubectl rollwise`` takes to answer.

    python -m hack.bench.cli_startup [--runs 15] [--source DIR] [-- ARGS ...]

Runs, ``--runs`` times each, in fresh interpreters of this virtualenv:

- ``import rollwise.cli.main`` (what every command pays before parsing its arguments);
- ``kubectl-rollwise --help``;
- ``kubectl-rollwise ARGS`` when ARGS are given after ``--`` (e.g.
  ``-- get rollout demo -n shop``, with ``KUBECONFIG`` set), exit code checked;

and prints the median and min wall time of each, and the median CPU time (user + system, which
a busy machine disturbs less than wall time), plus the modules that the import pulls in (count,
and whether the heavy ones are among them). ``--source DIR`` puts ``DIR`` (a
checkout's ``operator/`` directory, e.g. an older commit from ``git archive``) first on
``PYTHONPATH``, to compare two versions with the same interpreter and libraries.

Nothing is asserted: the numbers are for docs/cli.md and review.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

VENV_BIN = Path(sys.executable).parent

#: Modules a command should import only when it needs them.
HEAVY = ("kubernetes", "pydantic", "celpy", "yaml", "rollwise.core.modelrelease", "urllib3")

_MODULES = "import json, sys, rollwise.cli.main; print(json.dumps(sorted(m for m in sys.modules)))"


def _environment(source: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(source), *filter(None, [env.get("PYTHONPATH", "")])]
        )
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(
    command: Sequence[str], env: dict[str, str], runs: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each run."""
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        cpu_before = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        wall.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - cpu_before)
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
            )
    return wall, cpu


def _line(label: str, samples: tuple[list[float], list[float]]) -> str:
    wall = [s * 1000 for s in samples[0]]
    cpu = [s * 1000 for s in samples[1]]
    return (
        f"{label:<44} wall median {statistics.median(wall):5.0f} ms, min {min(wall):5.0f} ms;"
        f"  CPU median {statistics.median(cpu):5.0f} ms   ({len(wall)} runs)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.bench.cli_startup", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--source", type=Path, default=None, help="an operator/ directory")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- a command to time as well")
    options = parser.parse_args(argv)
    command = [a for a in options.args if a != "--"] if options.args else []
    env = _environment(options.source)
    python = str(VENV_BIN / "python")
    plugin = [python, "-c", "import sys; from rollwise.cli.main import main; sys.exit(main())"]

    found = subprocess.run(
        [python, "-c", _MODULES], env=env, capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(found.stdout)
    heavy = [h for h in HEAVY if h in modules]
    print(f"import rollwise.cli.main loads {len(modules)} modules; heavy: {heavy or 'none'}")
    print(
        _line(
            "python -c 'import rollwise.cli.main'",
            _time([python, "-c", "import rollwise.cli.main"], env, options.runs),
        )
    )
    print(_line("kubectl-rollwise --help", _time([*plugin, "--help"], env, options.runs)))
    if command:
        label = "kubectl-rollwise " + " ".join(command)
        print(_line(label[:48], _time([*plugin, *command], env, options.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
