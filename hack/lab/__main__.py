"""``python -m hack.lab``: run the lab in the foreground, and find or stop a running one.

    python -m hack.lab up [--dir .lab] [--traffic httproute/default/demo] [--rate 50]
                          [--no-prometheus] [--no-controller] [--nodes 2]
    python -m hack.lab operator [--dir .lab] [--namespace default] [--scope namespace]
    python -m hack.lab status [--dir .lab]   (exit 1 when Prometheus scrapes nothing)
    python -m hack.lab control REVISION_OR_SERVICE --error-ratio 0.3 [--latency-ms 120]
    python -m hack.lab down [--dir .lab]

``up`` starts the lab cluster (a real control plane, ``hack.cluster``) in ``DIR/cluster`` and
the lab on it, writes ``DIR/lab.pid`` and ``DIR/lab.json`` (the URLs and the kubeconfig),
prints them and the start-up time, and runs until Ctrl-C or SIGTERM, which stop the cluster
too. ``down`` sends SIGTERM to the process named in ``lab.pid`` and waits for it to exit.

``operator`` installs the chart into ``--namespace`` of the running lab (``helm install``, as
``hack.lab.operator`` does for the tests: no Deployment, the webhook on this machine) unless it
is installed already, and runs ``rollwise-operator`` in the foreground as the chart's
ServiceAccount with the lab's Prometheus, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

DEFAULT_DIR = Path(".lab")
#: When the command started, before the lab's heavy imports, for an honest start-up time.
_INVOKED = time.monotonic()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited process whose parent has not reaped it yet is a zombie: it no longer runs.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _read_pid(workdir: Path) -> int | None:
    try:
        return int((workdir / "lab.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _read_info(workdir: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads((workdir / "lab.json").read_text())
    except (OSError, ValueError):
        return None
    return info


def _route_target(text: str) -> str:
    from hack.lab.traffic import RouteTarget  # noqa: PLC0415 - only ``up`` needs it

    try:
        return str(RouteTarget.parse(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def cmd_up(args: argparse.Namespace) -> int:
    workdir: Path = args.dir
    pid = _read_pid(workdir)
    if pid is not None and _pid_alive(pid):
        print(
            f"a lab already runs (pid {pid}); stop it with: python -m hack.lab down",
            file=sys.stderr,
        )
        return 1
    from hack.lab._support import freeze_after_full_collections  # noqa: PLC0415
    from hack.lab.lab import Lab  # noqa: PLC0415 - keeps status, down and refusals light
    from hack.lab.prometheus import PrometheusError  # noqa: PLC0415

    freeze_after_full_collections()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lab = Lab(
        workdir,
        prometheus=not args.no_prometheus,
        scrape_interval=args.scrape_interval,
        traffic=args.traffic,
        rate=args.rate,
        seed=args.seed,
        controller=not args.no_controller,
        nodes=args.nodes,
    )
    lab.start()
    try:
        if lab.prometheus is not None:
            # Up means scraping: Prometheus applies a new targets file within about 5 s.
            try:
                lab.prometheus.wait_for_targets_up(lab.prometheus.targets, timeout=30)
            except PrometheusError as err:
                print(f"warning: Prometheus scrapes nothing: {err}\n{lab.prometheus.log_tail(5)}")
        info = dataclasses.asdict(lab.info())
        info["command_started_in_seconds"] = round(time.monotonic() - _INVOKED, 3)
        info["pid"] = os.getpid()
        (workdir / "lab.json").write_text(json.dumps(info, indent=2) + "\n")
        (workdir / "lab.pid").write_text(f"{os.getpid()}\n")
        print(f"API server:   {info['api']}  (kube-apiserver {lab.running_cluster.version})")
        print(f"kubeconfig:   {info['kubeconfig']}   (export KUBECONFIG={info['kubeconfig']})")
        print(f"kubectl:      {lab.running_cluster.kubectl_path}")
        if info["prometheus"]:
            print(f"Prometheus:   {info['prometheus']}")
        print(f"demo metrics: {info['metrics_hub']}/metrics")
        print(
            f"demo control: {info['metrics_hub']}/revisions, POST {info['metrics_hub']}/control/KEY"
        )
        if info["traffic"]:
            print(f"traffic:      {args.rate:g} req/s to {info['traffic']}")
        total = time.monotonic() - _INVOKED
        print(
            f"lab up in {total:.1f} s ({lab.started_in:.1f} s after imports; pid {os.getpid()});"
            " Ctrl-C or 'down' stops it"
        )
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
        print("stopping the lab")
    finally:
        lab.stop()
        for name in ("lab.pid", "lab.json"):
            with contextlib.suppress(FileNotFoundError):
                (workdir / name).unlink()
    return 0


def cmd_operator(args: argparse.Namespace) -> int:
    from hack.cluster import Cluster, ClusterError  # noqa: PLC0415 - keeps the others light
    from hack.lab.operator import (  # noqa: PLC0415
        InstallError,
        OperatorRelease,
        install_operator,
        release_name,
    )

    info = _read_info(args.dir)
    if info is None:
        print(f"no lab running in {args.dir}; start one: python -m hack.lab up", file=sys.stderr)
        return 3
    cluster = Cluster.attach(info["cluster_dir"])
    directory = args.dir / "operator" / args.namespace
    try:
        cluster.api(
            "POST",
            "/api/v1/namespaces",
            body={"metadata": {"name": args.namespace}},
            conflict_ok=True,
        )
        installed = bool(
            cluster.api(
                "GET",
                f"/api/v1/namespaces/{args.namespace}/serviceaccounts/{release_name(args.namespace)}",
                missing_ok=True,
            )
        )
        if installed and (directory / "release.json").exists():
            saved = json.loads((directory / "release.json").read_text())
            release = OperatorRelease(cluster=cluster, directory=directory, **saved)
            release.write_credentials()
        else:
            release = install_operator(cluster, args.namespace, directory, scope=args.scope)
            (directory / "release.json").write_text(
                json.dumps(
                    {
                        "namespace": release.namespace,
                        "name": release.name,
                        "scope": release.scope,
                        "webhook": release.webhook,
                        "webhook_port": release.webhook_port,
                    }
                )
            )
    except (ClusterError, InstallError) as err:
        print(f"cannot install the chart: {err}", file=sys.stderr)
        return 1
    print(f"release {release.name} in namespace {release.namespace}; operator user {release.user}")
    print(f"webhook at {release.webhook_url}; logs below (Ctrl-C stops the operator)")
    sys.stdout.flush()
    process = release.start(
        *release.watch_arguments(),
        log=Path("/dev/stdout"),
        prometheus_url=info.get("prometheus"),
        env={"ROLLWISE_LOG_FORMAT": "console"},
    )
    # Ctrl-C or SIGTERM stops the operator (SIGTERM: kopf finishes its passes), then this.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: process.terminate())
    return process.wait()


def cmd_down(args: argparse.Namespace) -> int:
    workdir: Path = args.dir
    pid = _read_pid(workdir)
    if pid is None or not _pid_alive(pid):
        for name in ("lab.pid", "lab.json"):
            with contextlib.suppress(FileNotFoundError):
                (workdir / name).unlink()
        print("no lab running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            print(f"lab stopped (pid {pid})")
            return 0
        time.sleep(0.1)
    print(f"lab (pid {pid}) did not stop within {args.timeout:g} s", file=sys.stderr)
    return 1


def _probe(url: str) -> str:
    try:
        resp = requests.get(url, timeout=2)
    except requests.RequestException as err:
        return f"down ({type(err).__name__})"
    return "up" if resp.status_code < 400 else f"HTTP {resp.status_code}"


def prometheus_health(url: str) -> tuple[bool, str]:
    """Whether the lab's Prometheus scrapes (every active target up), and a short text. A
    running process is not enough: with a wrong targets file it is ready and scrapes nothing,
    and every canary then pauses on no data."""
    ready = _probe(url + "/-/ready")
    if ready != "up":
        return False, ready
    try:
        resp = requests.get(url + "/api/v1/targets", params={"state": "active"}, timeout=2)
        targets = resp.json()["data"]["activeTargets"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as err:
        return False, f"ready, targets unknown ({type(err).__name__})"
    up = [t for t in targets if t.get("health") == "up"]
    if not targets:
        return False, "ready, but NOT scraping: no targets (check its targets file and log)"
    if len(up) < len(targets):
        errors = sorted(
            {str(t.get("lastError") or t.get("health")) for t in targets if t not in up}
        )
        return False, f"ready, {len(up)}/{len(targets)} targets up: {'; '.join(errors)}"
    return True, f"up, {len(up)}/{len(targets)} targets up"


def cmd_status(args: argparse.Namespace) -> int:
    workdir: Path = args.dir
    pid = _read_pid(workdir)
    info = _read_info(workdir)
    if pid is None or info is None or not _pid_alive(pid):
        print("no lab running")
        return 3
    print(f"lab running (pid {pid}), up in {info['started_in_seconds']} s")
    from hack.cluster import Cluster, ClusterError  # noqa: PLC0415 - keeps the others light

    try:
        processes = Cluster.attach(info["cluster_dir"]).process_status()
        health = ", ".join(f"{p.name} {p.detail}" for p in processes)
    except ClusterError as err:
        health = f"cluster not found ({err})"
    print(f"API server:   {info['api']}  ({health})")
    print(f"kubeconfig:   {info['kubeconfig']}")
    healthy = True
    if info.get("prometheus"):
        healthy, text = prometheus_health(info["prometheus"])
        print(f"Prometheus:   {info['prometheus']}  {text}")
    hub = info["metrics_hub"]
    print(f"demo metrics: {hub}/metrics  {_probe(hub + '/metrics')}")
    with contextlib.suppress(requests.RequestException, ValueError):
        revisions = requests.get(hub + "/revisions", timeout=2).json()
        for revision, detail in sorted(revisions.items()):
            print(
                f"  revision {revision} ({detail['service']}) at {detail['url']}: "
                f"errorRatio={detail['errorRatio']:g} latencyMs={detail['latencyMs']:g}"
            )
    if info.get("traffic"):
        print(f"traffic:      {info['traffic']}")
    return 0 if healthy else 1


def cmd_control(args: argparse.Namespace) -> int:
    info = _read_info(args.dir)
    if info is None:
        print("no lab running", file=sys.stderr)
        return 3
    body = {
        key: value
        for key, value in (
            ("errorRatio", args.error_ratio),
            ("latencyMs", args.latency_ms),
            ("jitterMs", args.jitter_ms),
        )
        if value is not None
    }
    resp = requests.post(f"{info['metrics_hub']}/control/{args.key}", json=body, timeout=5)
    print(resp.text.strip())
    return 0 if resp.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state directory (.lab)")
        return p

    up = with_dir(sub.add_parser("up", help="start the lab and stay in the foreground"))
    up.add_argument("--nodes", type=int, default=2, help="fake Nodes kwok runs (default 2)")
    up.add_argument(
        "--traffic",
        type=_route_target,
        help="send traffic to KIND/NAMESPACE/NAME, e.g. httproute/default/demo",
    )
    up.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    up.add_argument("--scrape-interval", default="1s", help="Prometheus scrape interval")
    up.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    up.add_argument("--seed", type=int, default=None, help="seed the demo services' randomness")
    up.add_argument(
        "--no-controller",
        action="store_true",
        help="leave the lab controller out (no demo services, no InferenceService status)",
    )
    up.set_defaults(func=cmd_up)

    operator = with_dir(
        sub.add_parser("operator", help="install the chart and run the operator, in the lab")
    )
    operator.add_argument("--namespace", default="default", help="the release's namespace")
    operator.add_argument(
        "--scope", choices=("namespace", "cluster"), default="namespace", help="the chart's scope"
    )
    operator.set_defaults(func=cmd_operator)

    down = with_dir(sub.add_parser("down", help="stop the running lab"))
    down.add_argument("--timeout", type=float, default=20.0)
    down.set_defaults(func=cmd_down)

    status = with_dir(sub.add_parser("status", help="show what runs"))
    status.set_defaults(func=cmd_status)

    control = with_dir(sub.add_parser("control", help="set a revision's error ratio / latency"))
    control.add_argument("key", help="a revision hash, or a service name (default for new ones)")
    control.add_argument("--error-ratio", type=float)
    control.add_argument("--latency-ms", type=float)
    control.add_argument("--jitter-ms", type=float)
    control.set_defaults(func=cmd_control)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
