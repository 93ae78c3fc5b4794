"""The ModelRelease gates: ``GateEvaluator`` turns a release's spec and the cluster's evidence
into the core's ``GateResult`` observations.

- ``evaluator``: ``GateEvaluator`` (which gates apply, caching, never raising);
- ``digest``: ``artifact-digest`` (file, directory, HTTP(S) and MLflow ``models:/`` artifacts);
- ``sbom``: ``sbom`` (CycloneDX JSON 1.4-1.6 vulnerabilities against ``maxSeverity``);
- ``policy``: ``policy-digest`` (the digest of the cluster's policy snapshot ConfigMap);
- ``freeze``: ``freeze-window`` (cron and explicit windows, time zones);
- ``evidence``: ``model-card``, ``security-decision``, ``revalidate-by``; ``rego``: the policy
  snapshot's Rego rules (``policy-accept``, ``policy-promote``);
- ``signature``: ``signature`` and ``attestation`` (Sigstore bundles verified offline, against a
  public key or keyless against a trusted root);
- ``fetch``: bounded reads (size and time) of files and URLs; ``configmaps``: ConfigMap reads;
  ``outcome``: a check's status and message.

docs/gates.md describes each gate, the digest conventions and the ConfigMap formats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollwise.adapters.gates.evaluator import GateEvaluator


def __getattr__(name: str) -> Any:
    # Imported on first use, so that ``python -m rollwise.adapters.gates.digest`` (and
    # ``.policy``) run their module once, without the Kubernetes client.
    if name == "GateEvaluator":
        from rollwise.adapters.gates.evaluator import GateEvaluator  # noqa: PLC0415

        return GateEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["GateEvaluator"]
