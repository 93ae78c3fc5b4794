"""How the plugin connects, as kubectl does: ``--kubeconfig``, else ``$KUBECONFIG``, else
``~/.kube/config``; ``--context`` else the current context; the namespace from ``-n``, else
the context's, else ``default``. Without any kubeconfig file, inside a pod
(``KUBERNETES_SERVICE_HOST`` set), the pod's service account is used. The ``kubernetes``
client's own loader reads the files; nothing here parses a kubeconfig. What the connection
then does is :class:`rollwise.cli.kube.Cluster`.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config

from rollwise.cli.common import CliError
from rollwise.cli.kube import Cluster

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _kubeconfig_exists(path: str | None) -> bool:
    if path:
        return True
    env = os.environ.get("KUBECONFIG")
    if env:
        return any(Path(p).expanduser().exists() for p in env.split(os.pathsep) if p)
    return Path("~/.kube/config").expanduser().exists()


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    """The cluster of ``--kubeconfig`` / ``--context`` (or in-cluster) and the namespace that
    commands default to."""
    from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415

    configuration = client.Configuration()
    in_cluster = not _kubeconfig_exists(kubeconfig) and bool(
        os.environ.get("KUBERNETES_SERVICE_HOST")
    )
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            default_ns = _service_account_namespace()
        else:
            if kubeconfig and not Path(kubeconfig).expanduser().exists():
                raise CliError(f"kubeconfig {kubeconfig} does not exist")
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            default_ns = _context_namespace(kubeconfig, context)
    except ConfigException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid configuration"
        raise CliError(f"cannot load the Kubernetes configuration: {first}") from exc
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CliError(f"cannot load the Kubernetes configuration: {exc}") from exc
    # One attempt per request: a server that refuses connections is reported at once instead
    # of after the client's silent retries.
    configuration.retries = 0
    api = client.ApiClient(configuration)
    return Cluster(api=api, namespace=namespace or default_ns, host=str(configuration.host))


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    chosen = active
    if context:
        chosen = next((c for c in contexts or [] if c.get("name") == context), active)
    details = (chosen or {}).get("context") or {}
    return str(details.get("namespace") or "default")


def _service_account_namespace() -> str:
    try:
        return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


__all__ = ["connect"]
