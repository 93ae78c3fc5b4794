"""pytest fixtures for the API emulator.

- ``apiserver``: a module-scoped :class:`BackgroundAPIServer` (fast bookmarks, small watch
  history so tests can reach 410 Gone); tests isolate themselves with ``namespace``.
- ``kubeconfig``: a kubeconfig file for it; ``kubectl``: runs /usr/bin/kubectl with that
  kubeconfig, a private discovery cache and a timeout; ``kube_client``: a ``kubernetes``
  ApiClient; ``namespace``: a fresh namespace per test.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.lab.kube.server import BackgroundAPIServer

KUBECTL = "/usr/bin/kubectl"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def apiserver() -> Iterator[BackgroundAPIServer]:
    with BackgroundAPIServer(bookmark_interval=0.5, watch_history=200) as server:
        yield server


@pytest.fixture(scope="module")
def kubeconfig(apiserver: BackgroundAPIServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return apiserver.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")


def make_kubectl(kubeconfig: Path, cache_dir: Path) -> Kubectl:
    def run(
        *args: str,
        input: str | None = None,
        timeout: float = 30,
        check: bool = False,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd: list[str] = [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache_dir)]
        if namespace:
            cmd += ["-n", namespace]
        cmd += list(args)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        if check and proc.returncode != 0:
            command = " ".join(args)
            raise AssertionError(
                f"kubectl {command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture(scope="module")
def kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return make_kubectl(kubeconfig, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture(scope="module")
def kube_client(kubeconfig: Path) -> Iterator[Any]:
    from kubernetes import client, config  # noqa: PLC0415 - heavy import, only when used

    api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    assert isinstance(api_client, client.ApiClient)
    yield api_client
    api_client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(apiserver: BackgroundAPIServer, request: pytest.FixtureRequest) -> str:
    """A new namespace for one test (created in process, visible to every client)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ns_type = apiserver.server.store.lookup("", "v1", "namespaces")
    assert ns_type is not None
    apiserver.run(apiserver.server.registry.create(ns_type, None, {"metadata": {"name": name}}))
    return name


def manifest(*docs: dict[str, Any]) -> str:
    """YAML for kubectl's stdin."""
    import yaml  # noqa: PLC0415

    return yaml.safe_dump_all(list(docs), sort_keys=False)


#: A small CRD exercising what the emulator must honour for custom resources: a schema with
#: defaults, an enum, a minimum and a CEL rule; status and scale subresources; printer columns.
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.lab.rollwise.dev"},
    "spec": {
        "group": "lab.rollwise.dev",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wg"],
            "categories": ["lab"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "selectableFields": [{"jsonPath": ".spec.color"}],
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "A widget of the lab.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "description": "What the widget should be.",
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.replicas <= 10",
                                        "message": "at most 10 replicas",
                                    }
                                ],
                                "properties": {
                                    "replicas": {
                                        "type": "integer",
                                        "minimum": 0,
                                        "default": 1,
                                        "description": "How many copies.",
                                    },
                                    "color": {
                                        "type": "string",
                                        "enum": ["red", "green", "blue"],
                                        "description": "The colour of the widget.",
                                    },
                                    "items": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string"},
                                    "replicas": {"type": "integer"},
                                    "selector": {"type": "string"},
                                    "observedGeneration": {"type": "integer"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widgets(apiserver: BackgroundAPIServer) -> Any:
    """The Widget CRD installed on the module's server; returns its ResourceType."""
    server = apiserver.server
    crd_type = server.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert crd_type is not None
    if server.store.lookup("lab.rollwise.dev", "v1", "widgets") is None:
        apiserver.run(server.registry.create(crd_type, None, WIDGET_CRD))
    rt = server.store.lookup("lab.rollwise.dev", "v1", "widgets")
    assert rt is not None
    return rt


#: kopf's peering CRDs (kopf.dev/v1), which a kopf operator expects unless run standalone.
KOPF_PEERING_CRDS = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "scope": scope,
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    for kind, plural, scope in [
        ("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        ("KopfPeering", "kopfpeerings", "Namespaced"),
    ]
]


class RawAPI:
    """Plain HTTP against the emulator, for checks of the wire format itself."""

    def __init__(self, base_url: str) -> None:
        import requests  # noqa: PLC0415

        self.base = base_url
        self.session = requests.Session()

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Any:
        import json as _json  # noqa: PLC0415

        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = _json.dumps(body)
            hdrs["Content-Type"] = content_type or "application/json"
        return self.session.request(
            method, self.base + path, data=data, params=params, headers=hdrs, timeout=timeout
        )


@pytest.fixture(scope="module")
def raw_api(apiserver: BackgroundAPIServer) -> RawAPI:
    return RawAPI(apiserver.url)
