"""I/O behind narrow, idempotent interfaces: Kubernetes objects, traffic routers, metric
providers and model registries. Adapters raise exceptions from ``rollwise.adapters.errors``;
only ``rollwise.runtime`` turns them into kopf's temporary or permanent errors."""
