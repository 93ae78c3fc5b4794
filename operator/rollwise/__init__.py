"""Rollwise: progressive delivery of Kubernetes workloads and ML model releases.

Layers (enforced by import-linter, see pyproject.toml):

- ``rollwise.core``: pure decisions; no I/O, no clock, no environment.
- ``rollwise.adapters``: I/O behind narrow interfaces (Kubernetes, routers, metric providers,
  model registries).
- ``rollwise.runtime``: kopf handlers, the reconcile loop, settings, metrics.
- ``rollwise.cli``: the ``kubectl rollwise`` plugin.
"""

__version__ = "0.1.0"

GROUP = "rollwise.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: The plurals of the kinds the operator serves (the CRDs in ``crds/`` name them too).
ROLLOUTS = "rollouts"
MODELRELEASES = "modelreleases"
NOTIFICATION_POLICIES = "notificationpolicies"
ANALYSIS_TEMPLATES = "analysistemplates"
CLUSTER_ANALYSIS_TEMPLATES = "clusteranalysistemplates"
