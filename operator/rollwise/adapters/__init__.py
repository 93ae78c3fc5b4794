"""I/O behind narrow, idempotent interfaces: Kubernetes objects, traffic routers, metric
providers and model registries. Adapters raise exceptions from ``rollwise.adapters.errors``;
only ``rollwise.runtime`` turns them into kopf's temporary or permanent errors.

- ``kube``: dict-in/dict-out access to the API (``KubeAPI``) and the mapping of client
  failures onto the error hierarchy;
- ``workloads``: revision Deployments and Service selectors (``Workloads``), read back as the
  core's ``RevisionState``;
- ``traffic``: the ``TrafficRouter`` interface, its Gateway API, Istio, replica-ratio and
  ``NopRouter`` implementations, and ``router_for``;
- ``metrics``: the ``MetricProvider`` interface, ``NopProvider`` and ``PrometheusProvider``;
- ``registry``: the model-registry ``AliasStore`` interface, its in-memory, ConfigMap and
  MLflow implementations, and ``alias_store_for``; every write is verified by reading back.

Every adapter is a plain synchronous class (the ``kubernetes``, ``prometheus-api-client``
and ``requests`` clients are synchronous); the runtime calls them from its asyncio loop through
``asyncio.to_thread``. None of them imports kopf.
"""
