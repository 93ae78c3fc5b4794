"""``python -m hack.cluster``: build, start, inspect and stop the lab cluster from a shell.

    python -m hack.cluster build [--force]
    python -m hack.cluster up [--dir .cluster] [--nodes 2] [--user NAME=GROUP,GROUP ...]
                              [--no-default-users] [--no-watch-cache]
    python -m hack.cluster status [--dir .cluster]
    python -m hack.cluster down [--dir .cluster]

``build`` builds the binaries into the shared cache unless they are there already, printing
progress, and prints their directory last. ``up`` starts the cluster in the background and
returns once it is usable, printing the admin kubeconfig's path (``export KUBECONFIG=...``);
the processes keep running until ``down``. ``status`` exits 1 unless every process runs and
kube-apiserver is ready. Nothing asks questions: all of it runs with CI=true and no stdin.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hack.cluster import build
from hack.cluster.cluster import DEFAULT_IDENTITIES, Cluster, ClusterError

DEFAULT_DIR = Path(".cluster")


def _print(message: str) -> None:
    print(message, flush=True)


def _parse_user(text: str) -> tuple[str, tuple[str, ...]]:
    name, _, groups = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME=GROUP,GROUP, got {text!r}")
    return name, tuple(g for g in groups.split(",") if g)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.cluster", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build the binaries into the shared cache")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even a complete cache")
    for name in ("up", "down", "status"):
        sub = commands.add_parser(name)
        sub.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the cluster's directory")
        if name == "up":
            sub.add_argument("--nodes", type=int, default=2, help="fake Nodes (default 2)")
            sub.add_argument(
                "--user",
                type=_parse_user,
                action="append",
                default=[],
                metavar="NAME=GROUP,GROUP",
                help="an identity to add (repeatable)",
            )
            sub.add_argument(
                "--no-default-users", action="store_true", help="leave alice, bob, carol, dave out"
            )
            sub.add_argument(
                "--no-watch-cache", action="store_true", help="serve lists and watches from etcd"
            )
    args = parser.parse_args(argv)

    try:
        if args.command == "build":
            _print(str(build.ensure_built(force=args.force, log=_print)))
            return 0
        directory = args.dir.expanduser().resolve()
        if args.command == "up":
            identities = {} if args.no_default_users else dict(DEFAULT_IDENTITIES)
            identities.update(dict(args.user))
            cluster = Cluster(
                directory,
                identities=identities,
                nodes=args.nodes,
                watch_cache=not args.no_watch_cache,
                log=_print,
            )
            cluster.up()
            _print(f"export KUBECONFIG={cluster.kubeconfig}")
            _print(f"kubectl: {cluster.kubectl_path}")
            return 0
        if args.command == "down":
            try:
                cluster = Cluster.attach(directory, log=_print)
            except ClusterError:
                _print(f"no cluster in {directory}")
                return 0
            cluster.down()
            _print(f"cluster in {directory} stopped")
            return 0
        cluster = Cluster.attach(directory, log=_print)
        statuses = cluster.process_status()
        _print(f"{cluster.version} at {cluster.server} ({directory})")
        for status in statuses:
            pid = "-" if status.pid is None else str(status.pid)
            _print(f"  {status.name:<24} pid {pid:<8} {status.detail}")
        healthy = all(s.running for s in statuses) and statuses[1].detail == "readyz ok"
        return 0 if healthy else 1
    except (ClusterError, build.BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
