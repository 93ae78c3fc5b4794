"""Benchmarks of the Rollout operator, run in the lab: ``python -m hack.bench.reaction`` (time
from a failing canary to weight 0) and ``python -m hack.bench.scale`` (many concurrent
rollouts: CPU, memory, step lag, API writes). They print their figures; nothing is asserted.
Results and the machine they came from are recorded in ``docs/benchmarks.md``.
"""
