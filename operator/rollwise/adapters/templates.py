"""Analysis templates as a pass reads them: ``AnalysisTemplate`` in the referrer's namespace,
``ClusterAnalysisTemplate`` cluster-wide, through the one Kubernetes gateway (``KubeAPI``).

A template is read fresh by each pass that references it (one GET per template per pass;
the pass view serves repeated reads within a pass), so an edit or a new template is seen by
the next pass of every Rollout or ModelRelease that names it. What is handed on is the
template's ``spec``, which the core parses and resolves (:mod:`rollwise.core.templates`).
"""

from __future__ import annotations

from typing import Any

from rollwise import ANALYSIS_TEMPLATES as ANALYSIS_TEMPLATE_PLURAL
from rollwise import CLUSTER_ANALYSIS_TEMPLATES as CLUSTER_ANALYSIS_TEMPLATE_PLURAL
from rollwise import GROUP, VERSION
from rollwise.adapters.errors import Forbidden, NotFound
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.resources import Resource
from rollwise.core.observations import TemplateKey, TemplateRead

ANALYSIS_TEMPLATES = Resource(GROUP, VERSION, ANALYSIS_TEMPLATE_PLURAL)
CLUSTER_ANALYSIS_TEMPLATES = Resource(GROUP, VERSION, CLUSTER_ANALYSIS_TEMPLATE_PLURAL)


class AnalysisTemplates:
    """Reads referenced templates; raises ``KubeError`` when the API server cannot answer."""

    def __init__(self, kube: KubeAPI) -> None:
        self.kube = kube

    def read(self, namespace: str, key: TemplateKey) -> TemplateRead | None:
        """The template's ``spec``; None when it does not exist; a message when the operator
        may not read it (RBAC: a ClusterAnalysisTemplate needs the ClusterRole that grants it,
        ``docs/analysis.md``)."""
        try:
            if key.cluster_scope:
                obj: dict[str, Any] = self.kube.get_cluster_scoped(
                    CLUSTER_ANALYSIS_TEMPLATES, key.name
                )
            else:
                obj = self.kube.get(ANALYSIS_TEMPLATES, namespace, key.name)
        except NotFound:
            return None
        except Forbidden as exc:
            return f"the operator may not read it ({exc.message})"
        spec = obj.get("spec")
        return spec if isinstance(spec, dict) else {}


__all__ = ["ANALYSIS_TEMPLATES", "CLUSTER_ANALYSIS_TEMPLATES", "AnalysisTemplates"]
