"""A real Kubernetes control plane on loopback, as plain processes: the lab cluster.

``Cluster(directory)`` starts etcd (data in ``/dev/shm``), kube-apiserver (RBAC, token-file
identities, audit log, API Priority and Fairness, a client certificate for admission
webhooks), kube-controller-manager, kube-scheduler and kwok (the kubelet of a few fake
Nodes), each on free ports of 127.0.0.1, so that several clusters run side by side. It writes
an admin kubeconfig and one per identity, keeps a state file (pids, ports, paths) so that
another process can find, inspect and stop the cluster, and offers the faults end-to-end tests
need: kill -9 and restart of kube-apiserver or etcd, etcd compaction (watches from compacted
revisions answer 410), and APF throttling of one client (real 429s).

The binaries come from ``hack.cluster.build`` (built on first use). This module starts,
watches and stops processes; the files they read come from ``hack.cluster.config`` and
``hack.cluster.pki``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from hack.cluster import apf, build, config, pki
from hack.cluster.identities import Identities, read_identities, write_identities
from hack.lab.processes import stop_process

#: The people kube-apiserver authenticates by default (name -> groups), as the governance
#: end-to-end tests need them: security approvers in ``sec-team``, product in ``pm``, the
#: executive in ``cto``.
DEFAULT_IDENTITIES: dict[str, tuple[str, ...]] = {
    "alice": ("ml", "sec-team"),
    "bob": ("sec-team",),
    "carol": ("pm", "sec-team"),
    "dave": ("cto",),
}

#: The cluster's administrator, as the rest of the lab names it.
ADMIN = "lab-admin"
ADMIN_GROUPS = ("system:masters",)

#: A pod with this annotation set to "true" runs but never becomes Ready (see stages.yaml).
NEVER_READY_ANNOTATION = "lab.rollwise.dev/never-ready"

#: kwok manages the Nodes that carry this annotation, and only those.
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
FAKE_NODE_VALUE = "fake"

SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
#: Fake nodes' InternalIP: a documentation address (RFC 5737), never routed, so a
#: ``kubectl logs`` aimed at a fake kubelet fails instead of reaching a real service.
NODE_IP = "192.0.2.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

#: The processes, in start order (``down`` stops them in reverse).
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

STATE_FILE = "state.json"
DEFAULT_SHM = Path("/dev/shm")

Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """The cluster could not start, or is not in the state an operation needs."""


@dataclass
class ProcessRecord:
    pid: int
    argv: list[str]
    log: str


@dataclass
class ClusterState:
    """What another process needs to find, inspect and stop a running cluster."""

    version: str
    bin_dir: str
    data_dir: str
    server: str
    ports: dict[str, int]
    identities: dict[str, list[str]]
    nodes: list[str]
    watch_cache: bool
    processes: dict[str, ProcessRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        raw = json.loads(path.read_text(encoding="utf-8"))
        processes = {name: ProcessRecord(**rec) for name, rec in raw.pop("processes").items()}
        return cls(**raw, processes=processes)

    def save(self, path: Path) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None
    running: bool
    detail: str


def _free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on 127.0.0.1; all sockets are held open together so
    the ports differ from one another."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _pid_running(pid: int, argv0: str) -> bool:
    """Whether ``pid`` still runs the binary ``argv0`` (not a zombie, not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return cmdline.split(b"\0", 1)[0].decode(errors="replace") == argv0


def _stop_pid(pid: int, argv0: str, *, timeout: float, kill_after: float = 5.0) -> None:
    """``stop_process`` for a process this one did not start: SIGTERM, a bounded wait, then
    SIGKILL; the pid is checked against the binary first so a reused pid is never signalled."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, kill_after)):
        if not _pid_running(pid, argv0):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_running(pid, argv0):
                return
            time.sleep(0.05)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """One lab cluster, kept in ``directory``.

    ``up()`` starts it (building the binaries first if needed) and ``down()`` stops it; as a
    context manager it does both. ``Cluster.attach(directory)`` finds a cluster another process
    started. The layout of ``directory``::

        kubeconfig                 the admin's (lab-admin, group system:masters)
        identities/<user>.kubeconfig, identities/tokens.csv (kube-apiserver's token file)
        pki/                       CAs, serving and client certificates, service account keys
        config/                    audit policy, admission configuration, kwok's stages
        components/                kubeconfigs of kube-controller-manager, kube-scheduler, kwok
        logs/<process>.log, logs/audit.log (JSON lines)
        state.json                 pids, ports, paths
        kubectl-cache/, flexvolume/  kept here rather than under $HOME or /usr/libexec

    etcd's data lives in a fresh directory under ``/dev/shm`` (``shm_root``), removed by
    ``down``; it survives kill -9 of etcd, so restarts find the data again.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        identities: Mapping[str, Sequence[str]] | None = None,
        nodes: int = 2,
        bin_dir: str | Path | None = None,
        watch_cache: bool = True,
        shm_root: str | Path | None = None,
        log: Log = print,
    ) -> None:
        """``identities``: name -> groups, besides the admin (default ``DEFAULT_IDENTITIES``);
        ``nodes``: how many fake Nodes kwok runs; ``bin_dir``: prebuilt binaries (default: the
        build cache, built when missing); ``watch_cache=False`` sends every list and watch to
        etcd (``--watch-cache=false``)."""
        self.directory = Path(directory).expanduser().resolve()
        people = dict(DEFAULT_IDENTITIES if identities is None else identities)
        if ADMIN in people:
            raise ValueError(f"{ADMIN} is the cluster's administrator; choose another name")
        self.identity_groups: dict[str, tuple[str, ...]] = {u: tuple(g) for u, g in people.items()}
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.node_names = [f"kwok-node-{i}" for i in range(nodes)]
        self._bin_dir = Path(bin_dir).resolve() if bin_dir is not None else None
        self.watch_cache = watch_cache
        self._shm_root = Path(shm_root) if shm_root is not None else None
        self._log = log
        self._state: ClusterState | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._identities: Identities | None = None
        self._session: requests.Session | None = None

    # ------------------------------------------------------------------ paths

    @property
    def state_file(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig (``lab-admin``, group ``system:masters``)."""
        return self.directory / "kubeconfig"

    @property
    def identities_dir(self) -> Path:
        return self.directory / "identities"

    @property
    def token_file(self) -> Path:
        return self.identities_dir / "tokens.csv"

    def kubeconfig_of(self, user: str) -> Path:
        """The kubeconfig of one identity (``ADMIN`` included); kubectl then acts as them."""
        if user != ADMIN and user not in self.identity_groups:
            raise KeyError(f"{user} is not one of the cluster's identities")
        return self.identities_dir / f"{user}.kubeconfig"

    @property
    def kubeconfigs(self) -> dict[str, Path]:
        return {user: self.kubeconfig_of(user) for user in (ADMIN, *self.identity_groups)}

    @property
    def pki_dir(self) -> Path:
        return self.directory / "pki"

    @property
    def ca_cert(self) -> Path:
        """The cluster CA: it signed the API server's serving certificate."""
        return self.pki_dir / "ca.crt"

    @property
    def webhook_client_cert(self) -> Path:
        """The client certificate kube-apiserver presents to admission webhooks
        (Common Name ``pki.WEBHOOK_CLIENT_CN``)."""
        return self.pki_dir / "webhook-client.crt"

    @property
    def webhook_client_key(self) -> Path:
        return self.pki_dir / "webhook-client.key"

    @property
    def webhook_client_ca(self) -> Path:
        """The CA a webhook trusts to require kube-apiserver's client certificate; it signs
        nothing else."""
        return self.pki_dir / "webhook-client-ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.pki_dir / "ca.key"

    def serving_certificate(
        self, directory: str | Path, *, hosts: Sequence[str] = ("127.0.0.1", "localhost")
    ) -> pki.KeyPair:
        """A serving certificate for ``hosts`` signed by the cluster CA (``ca_cert``), which
        the API server and every kubeconfig of the cluster trust: for an admission webhook
        served from this machine (``caBundle`` = the CA) or a proxy in front of the API
        server. Written to ``directory/serving.crt`` and ``serving.key``."""
        return pki.issue_serving_certificate(
            pki.KeyPair(self.ca_cert, self.ca_key), Path(directory), "serving", hosts=tuple(hosts)
        )

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def audit_log(self) -> Path:
        """kube-apiserver's audit log: one JSON event per line, Metadata level."""
        return self.logs_dir / "audit.log"

    def log_of(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    @property
    def state(self) -> ClusterState:
        if self._state is None:
            raise ClusterError(f"no cluster is running in {self.directory}")
        return self._state

    @property
    def server(self) -> str:
        """The API server's URL, ``https://127.0.0.1:<port>``."""
        return self.state.server

    @property
    def bin_dir(self) -> Path:
        return Path(self.state.bin_dir)

    @property
    def kubectl_path(self) -> Path:
        """kubectl of the cluster's own release."""
        return self.bin_dir / "kubectl"

    @property
    def version(self) -> str:
        return self.state.version

    def token_of(self, user: str) -> str:
        return self._identities_or_fail()[user].token

    def _identities_or_fail(self) -> Identities:
        if self._identities is None:
            raise ClusterError("the cluster has no identities yet (up() writes them)")
        return self._identities

    # ------------------------------------------------------------------ attach

    @classmethod
    def attach(cls, directory: str | Path, *, log: Log = print) -> Cluster:
        """The cluster whose state file is in ``directory`` (started by another process)."""
        directory = Path(directory).expanduser().resolve()
        path = directory / STATE_FILE
        if not path.exists():
            raise ClusterError(f"no cluster state in {directory}")
        state = ClusterState.load(path)
        cluster = cls(
            directory,
            identities=state.identities,
            nodes=len(state.nodes),
            bin_dir=state.bin_dir,
            watch_cache=state.watch_cache,
            log=log,
        )
        cluster.node_names = list(state.nodes)
        cluster._state = state
        cluster._identities = read_identities(cluster.identities_dir)
        return cluster

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Cluster:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self, *, timeout: float = 120.0) -> float:
        """Starts the cluster and waits until it is usable: kube-apiserver ready, the fake
        Nodes Ready, the default ServiceAccount and ``kube-root-ca.crt`` present. Returns the
        seconds it took (binaries already built). A process that exits during start-up fails
        it with the tail of its log, and whatever had started is stopped again."""
        if self.state_file.exists():
            previous = Cluster.attach(self.directory, log=self._log)
            if any(s.running for s in previous.process_status()):
                raise ClusterError(
                    f"a cluster is already running in {self.directory}; stop it first (down)"
                )
            previous.down()
        bin_dir = self._bin_dir or build.ensure_built(log=self._log)
        if not build.is_built(bin_dir):
            raise ClusterError(f"{bin_dir} lacks some of {', '.join(build.BINARIES)}")
        started = time.monotonic()
        try:
            self._prepare(bin_dir)
            deadline = time.monotonic() + timeout
            self._start("etcd")
            self._wait_etcd(deadline)
            self._start("kube-apiserver")
            self._wait_apiserver(deadline)
            for component in COMPONENTS[2:]:
                self._start(component)
            self._create_nodes()
            self._wait_usable(deadline)
        except BaseException:
            self.down()
            raise
        elapsed = time.monotonic() - started
        self._log(
            f"cluster: {self.version} up in {elapsed:.1f} s at {self.server} ({self.directory})"
        )
        return elapsed

    def down(self, *, timeout: float = 15.0) -> None:
        """Stops every process (SIGTERM, a bounded wait, SIGKILL) and removes etcd's data.
        Logs, kubeconfigs and certificates stay in the directory for inspection."""
        state = self._state
        if state is None:
            return
        # Clients first, all at once: nothing they do at shutdown needs the others.
        clients = [c for c in reversed(COMPONENTS[2:]) if c in state.processes]
        for component in clients:
            proc = self._procs.get(component)
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for component in [*clients, "kube-apiserver", "etcd"]:
            self._stop(component, timeout=timeout)
        shutil.rmtree(state.data_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        if self._session is not None:
            self._session.close()
            self._session = None
        self._state = None

    def process_status(self) -> list[ProcessStatus]:
        """Each process: its pid and whether it runs; kube-apiserver also whether /readyz
        answers ok, and etcd whether /health does."""
        statuses = []
        state = self.state
        for component in COMPONENTS:
            record = state.processes.get(component)
            if record is None:
                statuses.append(ProcessStatus(component, None, False, "not started"))
                continue
            running = _pid_running(record.pid, record.argv[0])
            detail = "running" if running else "not running"
            if running and component == "kube-apiserver":
                detail = "readyz ok" if self._apiserver_ready() else "readyz failing"
            elif running and component == "etcd":
                detail = "health ok" if self._etcd_healthy() else "health failing"
            statuses.append(ProcessStatus(component, record.pid, running, detail))
        return statuses

    # ------------------------------------------------------------------ faults

    def kill_apiserver(self) -> None:
        """kill -9 kube-apiserver (watches break, requests fail until it is started again)."""
        self._kill("kube-apiserver")

    def start_apiserver(self, *, timeout: float = 60.0) -> None:
        """Starts kube-apiserver again on the same port and waits until it is ready."""
        self._start("kube-apiserver")
        self._wait_apiserver(time.monotonic() + timeout)

    def restart_apiserver(self, *, timeout: float = 60.0) -> None:
        self.kill_apiserver()
        self.start_apiserver(timeout=timeout)

    def kill_etcd(self) -> None:
        """kill -9 etcd; its data stays in /dev/shm."""
        self._kill("etcd")

    def start_etcd(self, *, timeout: float = 60.0) -> None:
        """Starts etcd again on its data and waits until kube-apiserver is ready on it."""
        deadline = time.monotonic() + timeout
        self._start("etcd")
        self._wait_etcd(deadline)
        self._wait_apiserver(deadline)

    def restart_etcd(self, *, timeout: float = 60.0) -> None:
        self.kill_etcd()
        self.start_etcd(timeout=timeout)

    def compact_etcd(self) -> int:
        """Compacts etcd's history up to now, as kube-apiserver's own compactor does every five
        minutes: the revision goes under ``compact_rev_key`` (which kube-apiserver watches),
        and that write is the revision compacted to, so every change made before the call is
        history no longer kept. Returns the revision.

        A watch from a resourceVersion older than the newest change then answers 410 Gone
        whenever it reaches etcd: at once for resources without a watch cache (events, or all
        of them with ``watch_cache=False``); for cached ones once the version is older than
        what the cache holds, for instance after ``restart_apiserver()``. A watch from the
        newest resourceVersion lost nothing and goes on."""
        key = _b64("compact_rev_key")
        current = int(self._etcd("/v3/kv/range", {"key": key})["header"]["revision"])
        put = self._etcd("/v3/kv/put", {"key": key, "value": _b64(str(current + 1))})
        revision = int(put["header"]["revision"])
        if revision != current + 1:
            # Something else wrote in between: record the revision actually compacted to.
            self._etcd("/v3/kv/put", {"key": key, "value": _b64(str(revision))})
        self._etcd("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def throttle(
        self,
        *,
        user: str | None = None,
        service_account: tuple[str, str] | None = None,
        seats: int = 0,
    ) -> str:
        """Applies ``apf.throttle_manifests`` (with ``seats`` 0 the client gets one request in
        flight; concurrent ones are answered 429) and waits until the API server has taken the
        FlowSchema up. Returns the objects' name."""
        manifests = apf.throttle_manifests(user=user, service_account=service_account, seats=seats)
        for manifest in manifests:
            plural = (
                "prioritylevelconfigurations"
                if manifest["kind"].startswith("Priority")
                else "flowschemas"
            )
            name = manifest["metadata"]["name"]
            self.api(
                "PATCH",
                f"/apis/{apf.API_VERSION}/{plural}/{name}",
                body=manifest,
                params={"fieldManager": "rollwise-lab", "force": "true"},
                content_type="application/apply-patch+yaml",
            )
        name = str(manifests[0]["metadata"]["name"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            schema = self.api("GET", f"/apis/{apf.API_VERSION}/flowschemas/{name}")
            conditions = schema.get("status", {}).get("conditions", [])
            if any(c.get("type") == "Dangling" and c.get("status") == "False" for c in conditions):
                # The APF controller has read the schema; give its configuration a moment more.
                time.sleep(1.0)
                return name
            time.sleep(0.2)
        raise ClusterError(f"FlowSchema {name} was not taken up within 30 s")

    def unthrottle(
        self, *, user: str | None = None, service_account: tuple[str, str] | None = None
    ) -> None:
        name = apf.throttle_manifests(user=user, service_account=service_account)[0]["metadata"][
            "name"
        ]
        for plural in ("flowschemas", "prioritylevelconfigurations"):
            self.api("DELETE", f"/apis/{apf.API_VERSION}/{plural}/{name}", missing_ok=True)

    # ------------------------------------------------------------------ clients

    def api(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
        conflict_ok: bool = False,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """One request as the admin; the decoded JSON answer. Raises ``ClusterError`` on an
        error status (``{}`` instead for a 404 when ``missing_ok``, a 409 when ``conflict_ok``)."""
        response = self._http().request(
            method,
            self.server + path,
            data=None if body is None else json.dumps(body),
            params=params,
            headers={
                "Authorization": f"Bearer {self.token_of(ADMIN)}",
                "Content-Type": content_type,
            },
            timeout=timeout,
        )
        if (response.status_code == 404 and missing_ok) or (
            response.status_code == 409 and conflict_ok
        ):
            return {}
        if response.status_code >= 400:
            raise ClusterError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        result: dict[str, Any] = response.json() if response.content else {}
        return result

    def kubectl(
        self,
        *args: str,
        user: str = ADMIN,
        input: str | None = None,
        timeout: float = 60.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the cluster's kubectl as ``user``, with a discovery cache of this cluster's own
        (a later cluster on the same port may serve other resources)."""
        proc = subprocess.run(
            [
                str(self.kubectl_path),
                "--kubeconfig",
                str(self.kubeconfig_of(user)),
                "--cache-dir",
                str(self.directory / "kubectl-cache"),
                *args,
            ],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} as {user} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def write_service_account_kubeconfig(
        self, namespace: str, name: str, path: str | Path, *, expiration_seconds: int = 86400
    ) -> Path:
        """A kubeconfig acting as a ServiceAccount, with a token from the TokenRequest API (what
        ``kubectl create token`` gets), for running a component as the chart's account."""
        review = self.api(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        return config.write_kubeconfig(
            Path(path),
            server=self.server,
            ca_cert=self.ca_cert,
            user=f"system:serviceaccount:{namespace}:{name}",
            token=str(review["status"]["token"]),
            namespace=namespace,
        )

    # ------------------------------------------------------------------ internals

    def _prepare(self, bin_dir: Path) -> None:
        """Writes certificates, identities, kubeconfigs and configuration; records the state."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for sub in ("pki", "config", "components", "identities", "kubectl-cache"):
            shutil.rmtree(self.directory / sub, ignore_errors=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for old in self.logs_dir.glob("*.log"):
            old.unlink()
        version = _version_of(bin_dir)
        names = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        ports = dict(zip(names, _free_ports(len(names)), strict=True))
        shm = self._shm_root or (
            DEFAULT_SHM if DEFAULT_SHM.is_dir() else Path(tempfile.gettempdir())
        )
        data_dir = tempfile.mkdtemp(prefix="rollwise-cluster-", dir=shm)
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        self._state = ClusterState(
            version=version,
            bin_dir=str(bin_dir),
            data_dir=data_dir,
            server=server,
            ports=ports,
            identities={u: list(g) for u, g in self.identity_groups.items()},
            nodes=list(self.node_names),
            watch_cache=self.watch_cache,
        )
        self._state.save(self.state_file)

        keys = pki.make_pki(self.pki_dir, service_ip=KUBERNETES_SERVICE_IP)
        self._identities = write_identities(
            self.identities_dir, {ADMIN: ADMIN_GROUPS, **self.identity_groups}
        )
        for user, identity in self._identities.items():
            config.write_kubeconfig(
                identity.kubeconfig,
                server=server,
                ca_cert=keys.ca.cert,
                user=user,
                token=identity.token,
            )
        shutil.copyfile(self.kubeconfig_of(ADMIN), self.kubeconfig)
        self.kubeconfig.chmod(0o600)
        components = self.directory / "components"
        for component, pair in (
            ("kube-controller-manager", keys.controller_manager),
            ("kube-scheduler", keys.scheduler),
            ("kwok", keys.kwok),
        ):
            config.write_kubeconfig(
                components / f"{component}.kubeconfig",
                server=server,
                ca_cert=keys.ca.cert,
                user=component,
                client_cert=pair.cert,
                client_key=pair.key,
            )
        conf = self.directory / "config"
        config.write_audit_policy(conf / "audit-policy.yaml")
        config.write_admission_config(
            conf / "admission.yaml",
            webhook_kubeconfig=conf / "webhook-client.kubeconfig",
            client_cert=keys.webhook_client.cert,
            client_key=keys.webhook_client.key,
        )
        config.write_kwok_stages(conf / "kwok-stages.yaml", kubelet_version=version)

    def _argv(self, component: str) -> list[str]:
        state = self.state
        ports = state.ports
        binary = str(Path(state.bin_dir) / ("etcd" if component == "etcd" else component))
        pki_dir, conf, components = (
            self.pki_dir,
            self.directory / "config",
            self.directory / "components",
        )
        serving = [
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
        ]
        if component == "etcd":
            client = f"http://127.0.0.1:{ports['etcd']}"
            peer = f"http://127.0.0.1:{ports['etcd-peer']}"
            return [
                binary,
                "--name=lab",
                f"--data-dir={Path(state.data_dir) / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=lab={peer}",
                # The data is in memory anyway; fsync would only slow every write down.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ]
        if component == "kube-apiserver":
            argv = [
                binary,
                "--advertise-address=127.0.0.1",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['kube-apiserver']}",
                f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                *serving,
                f"--client-ca-file={pki_dir / 'ca.crt'}",
                f"--token-auth-file={self.token_file}",
                # The front proxy's CA, published for delegated authentication: without it
                # kube-controller-manager and kube-scheduler keep logging a missing CA bundle.
                f"--requestheader-client-ca-file={pki_dir / 'front-proxy-ca.crt'}",
                f"--requestheader-allowed-names={pki.FRONT_PROXY_CLIENT_CN}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki_dir / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki_dir / 'front-proxy-client.key'}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki_dir / 'service-account.pub'}",
                f"--service-account-signing-key-file={pki_dir / 'service-account.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--audit-policy-file={conf / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                # The log rotates at this size (MB); the default, 100 MB, is reached by a test
                # session or a benchmark, whose readers then lose their place.
                "--audit-log-maxsize=100000",
                # Written before the response, so a test reads every request it made.
                "--audit-log-mode=blocking",
                f"--admission-control-config-file={conf / 'admission.yaml'}",
                # The kubernetes Service's endpoints would be 127.0.0.1, which Endpoints refuse;
                # nothing in a cluster of fake pods calls the API server through it.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=true",
            ]
            if not state.watch_cache:
                argv.append("--watch-cache=false")
            return argv
        if component in ("kube-controller-manager", "kube-scheduler"):
            kubeconfig = components / f"{component}.kubeconfig"
            argv = [
                binary,
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports[component]}",
                *serving,
                # One control plane per cluster: nothing to elect, and no lease to wait for.
                "--leader-elect=false",
            ]
            if component == "kube-controller-manager":
                argv += [
                    f"--service-account-private-key-file={pki_dir / 'service-account.key'}",
                    f"--root-ca-file={pki_dir / 'ca.crt'}",
                    # Each controller acts as its own ServiceAccount, so the audit log says
                    # which controller made a request, as on kubeadm clusters.
                    "--use-service-account-credentials=true",
                    f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
                    f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    # Its default is under /usr/libexec, which it would create.
                    f"--flex-volume-plugin-dir={self.directory / 'flexvolume'}",
                    # Client-side rate limits would pace rollouts, not the API server.
                    "--kube-api-qps=200",
                    "--kube-api-burst=400",
                ]
            return argv
        if component == "kwok":
            return [
                binary,
                f"--kubeconfig={components / 'kwok.kubeconfig'}",
                f"--config={conf / 'kwok-stages.yaml'}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}={FAKE_NODE_VALUE}",
                f"--node-ip={NODE_IP}",
                f"--cidr={POD_CIDR}",
                # kwok renews each node's Lease, the heartbeat the node lifecycle controller reads.
                "--node-lease-duration-seconds=40",
            ]
        raise ValueError(f"unknown component {component}")

    def _start(self, component: str) -> None:
        state = self.state
        record = state.processes.get(component)
        if record is not None and _pid_running(record.pid, record.argv[0]):
            raise ClusterError(f"{component} is already running (pid {record.pid})")
        argv = self._argv(component)
        log_path = self.log_of(component)
        with log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own session: a terminal's Ctrl-C to the command that ran `up` must not
                # reach the cluster, which outlives that command.
                start_new_session=True,
                cwd=self.directory,
                # Whatever a component caches under $HOME stays with the cluster.
                env={**os.environ, "HOME": str(self.directory)},
            )
        self._procs[component] = proc
        state.processes[component] = ProcessRecord(pid=proc.pid, argv=argv, log=str(log_path))
        state.save(self.state_file)

    def _stop(self, component: str, *, timeout: float) -> None:
        proc = self._procs.pop(component, None)
        record = self.state.processes.get(component)
        if proc is not None:
            stop_process(proc, timeout=timeout)
        elif record is not None:
            _stop_pid(record.pid, record.argv[0], timeout=timeout)

    def _kill(self, component: str) -> None:
        proc = self._procs.pop(component, None)
        record = self.state.processes.get(component)
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        elif record is not None and _pid_running(record.pid, record.argv[0]):
            os.kill(record.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_running(record.pid, record.argv[0]) and time.monotonic() < deadline:
                time.sleep(0.02)

    def _check_alive(self, *components: str) -> None:
        for component in components:
            proc = self._procs.get(component)
            if proc is not None and proc.poll() is not None:
                raise ClusterError(
                    f"{component} exited ({proc.returncode}) during start-up; the end of"
                    f" {self.log_of(component)}:\n{_tail(self.log_of(component))}"
                )

    def _wait(self, what: str, check: Callable[[], bool], deadline: float, *watched: str) -> None:
        while True:
            self._check_alive(*watched)
            with contextlib.suppress(requests.RequestException, ClusterError):
                if check():
                    return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {c}:\n{_tail(self.log_of(c), 15)}" for c in watched)
                raise ClusterError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.1)

    def _http(self) -> requests.Session:
        """The session for every request to the cluster's processes: loopback only, so no
        proxies from the environment, and the cluster's own CA rather than any
        ``REQUESTS_CA_BUNDLE`` (which would override a session's ``verify``)."""
        if self._session is None:
            session = requests.Session()
            session.trust_env = False
            session.verify = str(self.ca_cert)
            self._session = session
        return self._session

    def admin_session(self) -> requests.Session:
        """A session acting as the admin against ``server`` (for streaming a watch, say)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_cert)
        session.headers["Authorization"] = f"Bearer {self.token_of(ADMIN)}"
        return session

    def _etcd(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.state.ports['etcd']}{path}"
        response = self._http().post(url, json=body, timeout=10)
        if response.status_code != 200:
            raise ClusterError(f"etcd {path}: {response.status_code} {response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result

    def _answers_ok(self, url: str) -> bool:
        with contextlib.suppress(requests.RequestException):
            return self._http().get(url, timeout=2).status_code == 200
        return False

    def _etcd_healthy(self) -> bool:
        return self._answers_ok(f"http://127.0.0.1:{self.state.ports['etcd']}/health")

    def _apiserver_ready(self) -> bool:
        return self._answers_ok(f"{self.server}/readyz")

    def _wait_etcd(self, deadline: float) -> None:
        self._wait("etcd to be healthy", self._etcd_healthy, deadline, "etcd")

    def _wait_apiserver(self, deadline: float) -> None:
        self._wait(
            "kube-apiserver to be ready", self._apiserver_ready, deadline, "etcd", "kube-apiserver"
        )

    def _create_nodes(self) -> None:
        for name in self.node_names:
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: FAKE_NODE_VALUE},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
            }
            self.api("POST", "/api/v1/nodes", body=node, conflict_ok=True)

    def _nodes_ready(self) -> bool:
        nodes = self.api("GET", "/api/v1/nodes")["items"]
        ready = {
            n["metadata"]["name"]
            for n in nodes
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
            and not any(
                t.get("effect") == "NoSchedule" for t in n.get("spec", {}).get("taints", [])
            )
        }
        return set(self.node_names) <= ready

    def _namespace_ready(self) -> bool:
        self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        self.api("GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
        return True

    def _component_healthy(self, component: str) -> bool:
        return self._answers_ok(f"https://127.0.0.1:{self.state.ports[component]}/healthz")

    def _wait_usable(self, deadline: float) -> None:
        everything = COMPONENTS
        self._wait("the fake nodes to be Ready", self._nodes_ready, deadline, *everything)
        self._wait(
            "the default ServiceAccount and kube-root-ca.crt",
            self._namespace_ready,
            deadline,
            *everything,
        )
        for component in ("kube-controller-manager", "kube-scheduler"):
            self._wait(
                f"{component} to be healthy",
                functools.partial(self._component_healthy, component),
                deadline,
                *everything,
            )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _version_of(bin_dir: Path) -> str:
    """The release the binaries report (``kubectl version --client``)."""
    out = subprocess.run(
        [str(bin_dir / "kubectl"), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return str(json.loads(out)["clientVersion"]["gitVersion"])


def wait_established(
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    *names: str,
    timeout: float = 60.0,
) -> None:
    """Waits until the CustomResourceDefinitions ``names`` (every one when none is named) are
    Established, through ``kubectl`` (a callable that runs kubectl with ``args``, ``timeout=``
    and ``check=``).

    ``kubectl wait --for=condition=Established`` is not used: a CRD the API server has just
    created carries ``status.conditions: null`` until its establishing controller runs, and
    kubectl's waiter fails on that at once ("accessor error: <nil> is of the type <nil>")
    instead of waiting."""
    args = ["get", "customresourcedefinitions", *names, "-o", "json"]
    deadline = time.monotonic() + timeout
    pending: list[str] = list(names)
    while True:
        proc = kubectl(*args, timeout=30, check=False)
        if proc.returncode == 0:
            answer = json.loads(proc.stdout)
            items = answer.get("items", [answer])
            pending = [
                item["metadata"]["name"]
                for item in items
                if not any(
                    cond.get("type") == "Established" and cond.get("status") == "True"
                    for cond in (item.get("status") or {}).get("conditions") or []
                )
            ]
            if items and not pending:
                return
        else:
            pending = [proc.stderr.strip() or f"kubectl exited {proc.returncode}"]
        if time.monotonic() > deadline:
            raise ClusterError(f"CRDs not Established after {timeout:.0f} s: {', '.join(pending)}")
        time.sleep(0.2)


def iter_audit_events(path: Path) -> Iterator[dict[str, Any]]:
    """The events of an audit log, one dict per line (``user.username``, ``verb``,
    ``objectRef.resource``, ``objectRef.subresource``, ``responseStatus.code``...)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
