"""The lab cluster: a real Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) with kwok as the kubelet of fake Nodes, built from
pinned Go modules and run as plain processes on loopback.

- ``hack.cluster.build``: builds the binaries once per machine into a shared cache;
- ``hack.cluster.cluster``: ``Cluster`` starts, inspects, faults and stops one cluster;
- ``hack.cluster.apf``: API Priority and Fairness manifests that throttle one client;
- ``python -m hack.cluster build|up|down|status``: the same from a shell or make.
"""

from hack.cluster.cluster import (
    ADMIN,
    DEFAULT_IDENTITIES,
    NEVER_READY_ANNOTATION,
    Cluster,
    ClusterError,
    iter_audit_events,
    wait_established,
)

__all__ = [
    "ADMIN",
    "DEFAULT_IDENTITIES",
    "NEVER_READY_ANNOTATION",
    "Cluster",
    "ClusterError",
    "iter_audit_events",
    "wait_established",
]
