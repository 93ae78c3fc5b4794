"""``adapters.templates.AnalysisTemplates`` against the lab's real API server: a namespaced
template read from the referrer's namespace, a cluster-scoped one read cluster-wide, and a
missing one reported as None (the core's "not found"), never an error."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import Kubectl
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.templates import AnalysisTemplates
from rollwise.core.observations import TemplateKey

pytestmark = pytest.mark.lab

SPEC: dict[str, Any] = {
    "args": [{"name": "service", "required": True}],
    "metrics": [
        {
            "name": "error-ratio",
            "successCondition": "result < 0.05",
            "provider": {"prometheus": {"query": 'sum(x{service="{{args.service}}"})'}},
        }
    ],
}


def manifest(kind: str, name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": SPEC,
        }
    )


def test_reads_namespaced_and_cluster_templates(
    kubectl: Kubectl, kube_client: Any, namespace: str
) -> None:
    shared = f"shared-{uuid.uuid4().hex[:8]}"
    kubectl("apply", "-f", "-", input=manifest("AnalysisTemplate", "errors"), namespace=namespace)
    kubectl("apply", "-f", "-", input=manifest("ClusterAnalysisTemplate", shared), check=True)
    try:
        templates = AnalysisTemplates(KubeAPI(kube_client))
        local = templates.read(namespace, TemplateKey(cluster_scope=False, name="errors"))
        assert isinstance(local, dict)
        assert local["metrics"][0]["name"] == "error-ratio"
        # The API server's defaults are what the core parses.
        assert local["args"][0] == {"name": "service", "required": True, "type": "string"}
        cluster = templates.read(namespace, TemplateKey(cluster_scope=True, name=shared))
        assert isinstance(cluster, dict)
        assert cluster["metrics"][0]["provider"]["prometheus"] == {
            "query": 'sum(x{service="{{args.service}}"})',
            "timeout": "10s",
        }
        # The same name as the other kind is a different object: not found.
        assert templates.read(namespace, TemplateKey(cluster_scope=True, name="errors")) is None
        assert templates.read(namespace, TemplateKey(cluster_scope=False, name=shared)) is None
        assert templates.read("default", TemplateKey(cluster_scope=False, name="errors")) is None
    finally:
        kubectl("delete", "clusteranalysistemplate", shared, check=False)
