"""Metric providers: the :class:`MetricProvider` interface, ``NopProvider`` and Prometheus."""

from rollwise.adapters.metrics.base import MetricProvider, NopProvider
from rollwise.adapters.metrics.prometheus import PrometheusProvider

__all__ = ["MetricProvider", "NopProvider", "PrometheusProvider"]
