"""Crash consistency in the test command: ten Rollouts in canaries on the real control plane,
three of them failing their analysis, the operator SIGKILLed at random moments and the moment
a route shows a completion. Each Rollout must tell its one right story: final phase, route
weights and Service selectors in order (nothing skipped, redone or moved backwards), events in
order (nothing lost or doubled). ``hack/chaos.py`` holds the round and its checks;
``python -m hack.bench.chaos`` runs longer ones.

The seed is random and printed; ``ROLLWISE_CHAOS_SEED`` replays a round.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from hack.bench.chaos import one_round
from hack.chaos import E2E_FAILING, E2E_ROLLOUTS, Plan

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def test_killed_operators_never_move_traffic_back_nor_lose_or_double_an_event(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("ROLLWISE_CHAOS_SEED") or random.SystemRandom().randrange(1 << 31))
    plan = Plan(namespace="chaos", rollouts=E2E_ROLLOUTS, failing=E2E_FAILING, seed=seed, kills=4)
    problems, lines = one_round(tmp_path, plan)
    print(f"chaos seed {seed}: " + "; ".join(lines))
    kills = int(lines[0].split()[1])
    assert kills >= plan.kills + 1, f"seed {seed}: the round killed the operator {kills} times"
    assert problems == [], f"seed {seed} (ROLLWISE_CHAOS_SEED={seed} replays it):\n" + "\n".join(
        problems
    )
