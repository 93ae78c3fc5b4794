"""pytest fixtures for Prometheus, the synthetic service, traffic and the workload simulator."""
