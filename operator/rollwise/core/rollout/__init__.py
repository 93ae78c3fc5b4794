"""The Rollout's wing of the core: its status, reasons, overrides view and decision.

Imports the kernel (:mod:`rollwise.core`) only, never :mod:`rollwise.core.modelrelease`
(an import-linter independence contract keeps the two wings apart).
"""
