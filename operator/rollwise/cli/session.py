"""One run of the plugin (:class:`Session`): where it writes, how that looks, and how it
connects to the cluster (:data:`Connector`, only when a command needs it)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rollwise.cli.display import Display
    from rollwise.cli.kube import Cluster

#: Makes the cluster connection from ``--kubeconfig``, ``--context`` and ``-n``
#: (:func:`rollwise.cli.connect.connect`; tests pass a fake).
Connector = Callable[[str | None, str | None, str | None], "Cluster"]


@dataclass(frozen=True)
class Session:
    """One run of the plugin: where it writes, how that looks, and how it connects."""

    out: TextIO
    err: TextIO
    display: Display
    connector: Connector

    def cluster(self, args: argparse.Namespace) -> Cluster:
        return self.connector(
            getattr(args, "kubeconfig", None),
            getattr(args, "context", None),
            getattr(args, "namespace", None),
        )
