"""Keys and certificates of a lab cluster, made with the ``openssl`` command at start.

Two certificate authorities: the cluster CA signs the API server's serving certificate and
the client certificates of the control plane's own parts (kube-controller-manager,
kube-scheduler, kwok); kube-apiserver trusts it for clients (``--client-ca-file``). A second
CA signs only the client certificate kube-apiserver presents to admission webhooks, so a
webhook that requires that certificate trusts the API server and nobody else. A third, the
front proxy's, is what kube-apiserver publishes for delegated authentication (the
``extension-apiserver-authentication`` ConfigMap that kube-controller-manager and
kube-scheduler read) and what it uses towards aggregated API servers. The service
account signing key pair makes ServiceAccount tokens (TokenRequest, ``kubectl create token``).

ECDSA P-256 keys: every Kubernetes part accepts them, and openssl makes them in milliseconds,
which keeps a cluster's start short. This module writes files only; it runs nothing else.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: The Common Name of the certificate kube-apiserver presents to admission webhooks.
WEBHOOK_CLIENT_CN = "kube-apiserver-webhook-client"

#: The Common Name of the certificate kube-apiserver presents when it proxies to an
#: aggregated API server (the front proxy).
FRONT_PROXY_CLIENT_CN = "front-proxy-client"

#: The in-cluster names and addresses the API server's certificate is valid for, besides
#: 127.0.0.1 and localhost (the first address of the service range is the kubernetes Service).
SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)

DAYS = 365


class PKIError(RuntimeError):
    """openssl failed; the message carries its output."""


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterPKI:
    """Every key and certificate of one cluster, by role."""

    ca: KeyPair
    apiserver: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    kwok: KeyPair
    webhook_client_ca: KeyPair
    webhook_client: KeyPair
    front_proxy_ca: KeyPair
    front_proxy_client: KeyPair
    service_account_key: Path
    service_account_public_key: Path


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PKIError(f"openssl {' '.join(args[:2])} failed:\n{proc.stderr}")


def _new_key(path: Path) -> Path:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )
    path.chmod(0o600)
    return path


def _new_ca(directory: Path, name: str, common_name: str) -> KeyPair:
    key = _new_key(directory / f"{name}.key")
    cert = directory / f"{name}.crt"
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", str(DAYS),
        "-subj", f"/CN={common_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    return KeyPair(cert, key)


def _new_leaf(
    directory: Path,
    name: str,
    ca: KeyPair,
    *,
    common_name: str,
    organizations: tuple[str, ...] = (),
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
) -> KeyPair:
    key = _new_key(directory / f"{name}.key")
    cert = directory / f"{name}.crt"
    subject = "".join(f"/O={o}" for o in organizations) + f"/CN={common_name}"
    extensions = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature"]
    if server_names or server_ips:
        alt = [f"DNS:{n}" for n in server_names] + [f"IP:{ip}" for ip in server_ips]
        extensions += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(alt)]
    else:
        extensions.append("extendedKeyUsage=clientAuth")
    args = ["req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", str(DAYS)]
    args += ["-CA", str(ca.cert), "-CAkey", str(ca.key), "-subj", subject]
    for extension in extensions:
        args += ["-addext", extension]
    _openssl(*args)
    return KeyPair(cert, key)


def issue_serving_certificate(
    ca: KeyPair, directory: Path, name: str, *, hosts: tuple[str, ...]
) -> KeyPair:
    """A serving certificate (``<name>.crt``, ``<name>.key`` in ``directory``) for ``hosts``
    (DNS names or IP addresses), signed by ``ca``: for a webhook or a proxy that clients reach
    by those names and trust through ``ca``."""
    directory.mkdir(parents=True, exist_ok=True)
    names = tuple(h for h in hosts if not _is_ip(h))
    ips = tuple(h for h in hosts if _is_ip(h))
    return _new_leaf(directory, name, ca, common_name=hosts[0], server_names=names, server_ips=ips)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def make_pki(directory: Path, *, service_ip: str) -> ClusterPKI:
    """Writes a fresh set of keys and certificates into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _new_ca(directory, "ca", "rollwise-lab-cluster-ca")
    webhook_ca = _new_ca(directory, "webhook-client-ca", "rollwise-lab-webhook-client-ca")
    front_proxy_ca = _new_ca(directory, "front-proxy-ca", "rollwise-lab-front-proxy-ca")
    sa_key = _new_key(directory / "service-account.key")
    sa_pub = directory / "service-account.pub"
    _openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    return ClusterPKI(
        ca=ca,
        apiserver=_new_leaf(
            directory,
            "apiserver",
            ca,
            common_name="kube-apiserver",
            server_names=("localhost", *SERVICE_NAMES),
            server_ips=("127.0.0.1", service_ip),
        ),
        controller_manager=_new_leaf(
            directory, "controller-manager", ca, common_name="system:kube-controller-manager"
        ),
        scheduler=_new_leaf(directory, "scheduler", ca, common_name="system:kube-scheduler"),
        # kwok plays every node's kubelet at once (node and pod status, leases, deletions
        # of any pod), more than the Node authorizer grants one kubelet.
        kwok=_new_leaf(
            directory, "kwok", ca, common_name="kwok", organizations=("system:masters",)
        ),
        webhook_client_ca=webhook_ca,
        webhook_client=_new_leaf(
            directory, "webhook-client", webhook_ca, common_name=WEBHOOK_CLIENT_CN
        ),
        front_proxy_ca=front_proxy_ca,
        front_proxy_client=_new_leaf(
            directory, "front-proxy-client", front_proxy_ca, common_name=FRONT_PROXY_CLIENT_CN
        ),
        service_account_key=sa_key,
        service_account_public_key=sa_pub,
    )


def issue_certificate_authority(directory: Path, name: str, common_name: str) -> KeyPair:
    """A CA of its own (``<name>.crt``, ``<name>.key`` in ``directory``): for a test's stranger
    whose certificates no component of the cluster trusts."""
    directory.mkdir(parents=True, exist_ok=True)
    return _new_ca(directory, name, common_name)


def issue_client_certificate(
    ca: KeyPair, directory: Path, name: str, *, common_name: str
) -> KeyPair:
    """A client certificate (``<name>.crt``, ``<name>.key`` in ``directory``) signed by
    ``ca``, with the clientAuth extended key usage."""
    directory.mkdir(parents=True, exist_ok=True)
    return _new_leaf(directory, name, ca, common_name=common_name)
