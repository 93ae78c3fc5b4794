"""The files a lab cluster's processes read: kubeconfigs, the audit policy, the admission
configuration that gives webhooks kube-apiserver's client certificate, and kwok's stages.

Pure file writing, no processes: ``hack.cluster.cluster`` decides where the files go and
passes their paths to the processes it starts.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
STAGES = HERE / "stages.yaml"


def write_private(path: Path, text: str) -> Path:
    """Writes ``text`` readable by the owner only (kubeconfigs and token files hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    temporary.replace(path)
    return path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    user: str,
    token: str | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    namespace: str = "default",
) -> Path:
    """A kubeconfig with one context; credentials are a bearer token or a client certificate.
    Certificates are embedded, so the file stays valid wherever it is copied."""
    credentials: dict[str, Any] = {}
    if token is not None:
        credentials["token"] = token
    if client_cert is not None and client_key is not None:
        credentials["client-certificate-data"] = _b64(client_cert)
        credentials["client-key-data"] = _b64(client_key)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "rollwise-lab",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": f"{user}@rollwise-lab",
                "context": {"cluster": "rollwise-lab", "user": user, "namespace": namespace},
            }
        ],
        "current-context": f"{user}@rollwise-lab",
        "preferences": {},
    }
    return write_private(path, yaml.safe_dump(config, sort_keys=False))


def write_audit_policy(path: Path) -> Path:
    """Every request at Metadata level: user, verb, resource, subresource, namespace, name,
    response code, no bodies. The RequestReceived stage is left out: each request still gets
    its ResponseComplete (or ResponseStarted, for watches) event, so counts stay exact."""
    policy = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata"}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def write_admission_config(
    path: Path, *, webhook_kubeconfig: Path, client_cert: Path, client_key: Path
) -> Path:
    """kube-apiserver presents ``client_cert`` to every admission webhook it calls: the
    webhook kubeconfig's user ``*`` matches any webhook host."""
    write_private(
        webhook_kubeconfig,
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [
                    {
                        "name": "*",
                        "user": {
                            "client-certificate": str(client_cert),
                            "client-key": str(client_key),
                        },
                    }
                ],
            },
            sort_keys=False,
        ),
    )
    webhook_config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(webhook_kubeconfig),
    }
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {"name": "ValidatingAdmissionWebhook", "configuration": webhook_config},
            {"name": "MutatingAdmissionWebhook", "configuration": webhook_config},
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_kwok_stages(path: Path, *, kubelet_version: str) -> Path:
    """kwok's ``--config``: the lab's stages (``stages.yaml``), nodes reporting
    ``kubelet_version`` as a real kubelet of the cluster's release would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = STAGES.read_text(encoding="utf-8").replace("@KUBELET_VERSION@", kubelet_version)
    path.write_text(text)
    return path
