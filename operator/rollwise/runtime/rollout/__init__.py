"""The Rollout's wing of the runtime: its pass (observe, decide, persist, act, post) and its
kopf handlers.

Builds on the shared skeleton (:mod:`rollwise.runtime.skeleton`, :mod:`rollwise.runtime.passes`,
:mod:`rollwise.runtime.loops`), never on :mod:`rollwise.runtime.release` (an import-linter
independence contract keeps the two wings apart).
"""
