"""The ModelRelease's wing of the core: its status, reasons, policy, identity records and
decision.

Imports the kernel (:mod:`rollwise.core`) only, never :mod:`rollwise.core.rollout` (an
import-linter independence contract keeps the two wings apart).
"""
