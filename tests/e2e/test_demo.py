"""The README's demo command keeps working: ``python -m hack.demo`` (what ``make demo`` runs)
exits 0 and tells the whole story in order.

It runs the demo as a subprocess, as a newcomer would, with its own work directory, and reads
its output: the canary reaching 5, 25 and 100% in the route, Healthy, then the bad revision's
failing measurement, the route back at 0%, AnalysisFailed and RolledBack, Degraded, and a
printed reaction time within the analysis interval + 2 s. Then the ModelRelease: created by
alice, its gates passed (Staged), its canary passed, approved by bob as security and by carol
as product under their own identities (the webhook's records, echoed by the plugin), Approved,
the alias flipped and read back from its ConfigMap, Production.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hack.demo import INTERVAL_SECONDS

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(340),
    pytest.mark.lab_only("the demo brings up a lab cluster of its own"),
]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300

#: What the output must show, each pattern on a line at or after the previous one's; the
#: patterns of a tuple in any order among themselves (a status change and the event posted in
#: the same pass reach the demo's watches in either order).
STORY: list[str | tuple[str, ...]] = [
    r"route 0% -> 5%",
    r"route 5% -> 25%",
    r"route 25% -> 100%",
    r"phase \S+ -> Healthy",
    r"route weights seen: 5% -> 25% -> 100%$",
    r"revision \w+ is stable and takes all traffic: Healthy",
    r"^== 4\. A bad revision",
    r"measure\s+error-ratio\s+[\d.]+\s+pass if < 0\.05\s+Fail",
    r"route \d+% -> 0%",
    (r"-> Degraded", r"WARNING\s+AnalysisFailed: .*error-ratio"),
    r"WARNING\s+RolledBack: ",
    r"^reaction time: [\d.]+ s",
    r"Phase:\s+Degraded",
    r"^== 6\. A model release: kubectl apply -f examples/modelrelease-template/ \(as alice\)",
    r"modelrelease.rollwise.dev/fraud-detector-7 created",
    r"event\s+Staged: version 7 moved to Staging: gates passed",
    r"event\s+CanaryPassed: ",
    r"^gates: .*artifact-digest Passed",
    r"^\$ kubectl rollwise approve modelrelease/fraud-detector-7 --role security   # as bob",
    r"approval recorded: role security for version 7.* by bob$",
    r"^\$ kubectl rollwise approve modelrelease/fraud-detector-7 --role product   # as carol",
    r"approval recorded: role product for version 7.* by carol$",
    r"event\s+ReleaseApproved: ",
    r"event\s+PromotedToProduction: ",
    r"fraud-detector-7 is in Production, approved by security: bob, product: carol",
    r"^\$ kubectl get configmap model-aliases",
    r'^  \{"fraud-detector\.production":.*version.*7',
    r"^- alice released fraud-detector version 7",
    r"^Try it yourself",
    r"^stopped the operator and the lab",
]


@pytest.mark.timing
def test_make_demo_tells_the_whole_story_and_exits_0(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hack.demo", "--workdir", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the demo stop the operator and the lab before it goes.
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        pytest.fail(f"the demo did not finish within {TIMEOUT} s:\n{output}")
    print(output)
    assert process.returncode == 0, output

    lines = output.splitlines()
    at = 0
    for entry in STORY:
        start, latest = at, at
        for pattern in (entry,) if isinstance(entry, str) else entry:
            found = next(
                (i for i in range(start, len(lines)) if re.search(pattern, lines[i])), None
            )
            assert found is not None, f"{pattern!r} not found after line {start}:\n{output}"
            latest = max(latest, found)
        at = latest

    reaction = re.search(r"^reaction time: ([\d.]+) s", output, re.MULTILINE)
    assert reaction is not None
    assert 0 < float(reaction.group(1)) <= INTERVAL_SECONDS + 2
    assert "\033[" not in output  # no colours without a terminal
    assert (tmp_path / "operator.log").stat().st_size > 0
