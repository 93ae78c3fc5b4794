"""``python -m hack.bench.chaos``: crash-consistency rounds on the lab's real control plane,
with counts over many kills.

    python -m hack.bench.chaos [--rounds 3] [--rollouts 10] [--failing 3] [--kills 6]
                               [--seed N] [--completion-only] [--workdir DIR]

Each round starts a cluster of its own (``hack.cluster``: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok), applies the CRDs with kubectl, starts a real
Prometheus (the analysis steps' queries are constants it evaluates) and runs
``rollwise-operator`` as a process it SIGKILLs: at random moments (``--kills`` per round) and
the moment a route shows a completion (canary weight 100 → 0). ``--completion-only`` kills
only then. It prints, per round, the seed, the kills, and every deviation from the one right
story of each Rollout (``hack.chaos.check``): route weights and Service selectors that moved
backwards, steps skipped or redone, events lost or doubled; and the totals at the end.

Boundary: a measurement script; it asserts nothing. ``tests/cluster/test_chaos_operator.py`` runs
one short round as a test.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from hack.bench._common import REPO
from hack.chaos import Plan, Round, check, summary
from hack.cluster import Cluster, wait_established
from hack.lab.operator import OPERATOR
from hack.lab.prometheus import PrometheusServer

CRDS = [REPO / "crds", REPO / "hack" / "lab" / "crds" / "gateway.networking.k8s.io_httproutes.yaml"]


class OperatorProcess:
    """``rollwise-operator`` for the round's namespace, started and SIGKILLed on demand."""

    def __init__(self, kubeconfig: Path, namespace: str, prometheus: str, log: Path) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.prometheus = prometheus
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "ROLLWISE_PROMETHEUS_URL": self.prometheus,
            "ROLLWISE_LOG_FORMAT": "json",
            "ROLLWISE_METRICS_PORT": "0",
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(OPERATOR), "--namespace", self.namespace],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def one_round(workdir: Path, plan: Plan) -> tuple[list[str], list[str]]:
    """Runs one round in a fresh cluster; returns (problems, summary lines)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with Cluster(workdir / "cluster", log=lambda _line: None) as cluster:
        for path in CRDS:
            cluster.kubectl("apply", "--server-side", "-f", str(path))
        wait_established(cluster.kubectl)
        cluster.kubectl("create", "namespace", plan.namespace)
        prometheus = PrometheusServer([], data_dir=workdir / "prometheus")
        prometheus.start()
        operator = OperatorProcess(
            cluster.kubeconfig, plan.namespace, prometheus.url, workdir / "operator.log"
        )
        try:
            run = Round(cluster.kubeconfig, plan, operator, kubectl=(str(cluster.kubectl_path),))
            record = run.run()
            return check(run, record), [*summary(record), f"operator starts: {operator.starts}"]
        finally:
            operator.stop()
            prometheus.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hack.bench.chaos", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=10)
    parser.add_argument("--failing", type=int, default=3)
    parser.add_argument("--kills", type=int, default=6, help="random kills per round")
    parser.add_argument("--seed", type=int, default=None, help="first round's seed")
    parser.add_argument(
        "--completion-only", action="store_true", help="kill only right after completions"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rollwise-chaos-"))
    total_problems = 0
    total_kills = 0
    for n in range(args.rounds):
        plan = Plan(
            namespace="chaos",
            rollouts=args.rollouts,
            failing=args.failing,
            seed=first + n,
            kills=0 if args.completion_only else args.kills,
        )
        began = time.monotonic()
        problems, lines = one_round(workdir / f"round-{n}", plan)
        print(f"round {n} (seed {plan.seed}, {time.monotonic() - began:.0f} s):")
        for line in lines:
            print(f"  {line}")
            if line.startswith("kills:"):
                total_kills += int(line.split()[1])
        for problem in problems:
            print(f"  PROBLEM {problem}")
        if not problems:
            print("  every Rollout told its one right story")
        total_problems += len(problems)
    print(
        f"total: {args.rounds} rounds, {total_kills} kills, {total_problems} problems "
        f"(workdir {workdir})"
    )


if __name__ == "__main__":
    main()
