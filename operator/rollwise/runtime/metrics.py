"""The operator's own Prometheus metrics, on a registry of their own.

A private ``CollectorRegistry`` (not the client library's global one) keeps the endpoint to
what is documented here and lets tests build as many as they like. :meth:`OperatorMetrics.serve`
exposes it over HTTP on the metrics port (``ROLLWISE_METRICS_PORT``; 0 turns it off).

Series:

* ``rollwise_rollouts{phase}``: how many Rollouts are in each phase (gauge);
* ``rollwise_rollout_info{namespace,rollout,phase,router}``: 1 for each Rollout, labelled
  with its phase and its traffic router (``gatewayAPI``, ``istio``, ``replicaRatio``,
  ``blueGreen``), one
  series per Rollout (the series of its previous phase is removed), so per-Rollout alerts
  have a bounded cardinality: ``rollwise_rollout_info{phase="Degraded"} == 1``;
* ``rollwise_rollout_canary_weight{namespace,rollout}``: the canary weight in status;
* ``rollwise_rollout_revision_info{namespace,rollout,role,revision}``: 1 for the stable and
  the canary revision of each Rollout (``role``: ``stable``, ``canary``), so that a
  workload's own metrics, labelled by revision, can be split into canary and stable
  (``* on (revision) group_left(role) rollwise_rollout_revision_info``);
* ``rollwise_analysis_measurements_total{namespace,rollout,metric,verdict}`` (``verdict``:
  Pass, Fail, Inconclusive, or Error when the provider failed);
* ``rollwise_rollbacks_total{namespace,rollout,reason}`` (``reason``: ``RolledBack`` for an
  automatic rollback, ``Aborted`` for a person's abort, ``RegressionRollback`` for the
  post-promotion watch's fast track);
* ``rollwise_regression_detected_total``, ``rollwise_regression_confirmed_total`` and
  ``rollwise_regression_false_positive_total`` ``{namespace,name,severity,reason}``: the
  post-promotion watch's regression episodes, each counted once (a false positive was
  detected, then cleared without confirmation);
* ``rollwise_reconcile_duration_seconds`` (histogram of one reconcile pass);
* ``rollwise_api_errors_total{operation,code}`` (``code``: HTTP status, or the error class);
* ``rollwise_status_writes_total``;
* ``rollwise_model_releases{stage}``: how many ModelReleases are in each stage (gauge);
* ``rollwise_model_release_info{namespace,release,model,version,stage}``: 1 for each
  ModelRelease (one series per release, like ``rollwise_rollout_info``);
* ``rollwise_events_posted_total`` and ``rollwise_events_lost_total`` (``core.events``);
* ``rollwise_notifications_total{sink,result}``: notifications that ended, by sink type
  (``webhook``, ``cloudevents``, ``slack``) and result (``delivered``, ``failed``,
  ``refused``; ``runtime.notify``), ``rollwise_notifications_dropped_total`` (the delivery
  queue was full) and ``rollwise_notification_queue`` (jobs waiting: queued, parked or
  waiting for a retry);
* ``rollwise_webhook_calls_total{type,answer}``: gating webhook calls by webhook type and
  answer (``2xx``, ``other`` for any other status, ``none`` when nothing answered in time or
  the address was refused).

Per-rollout series are removed by :meth:`OperatorMetrics.forget` when the Rollout is deleted,
so a cluster with churn does not grow the endpoint forever.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from rollwise.core.modelrelease.status import Stage
from rollwise.core.phases import Phase
from rollwise.core.postpromotion import PostPromotionStatus, counted


class OperatorMetrics:
    """The metric families and the bookkeeping that keeps ``rollwise_rollouts`` exact."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.rollouts = Gauge(
            "rollwise_rollouts",
            "Rollouts by phase.",
            ["phase"],
            registry=self.registry,
        )
        self.canary_weight = Gauge(
            "rollwise_rollout_canary_weight",
            "Canary weight (percent) recorded in the Rollout's status.",
            ["namespace", "rollout"],
            registry=self.registry,
        )
        self.measurements = Counter(
            "rollwise_analysis_measurements",
            "Analysis measurements taken, by verdict.",
            ["namespace", "rollout", "metric", "verdict"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "rollwise_rollbacks",
            "Canaries taken back: automatic rollbacks (RolledBack) and aborts (Aborted).",
            ["namespace", "rollout", "reason"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "rollwise_decisions",
            "Decisions on canary steps (status.decision), counted once per change, by kind "
            "(rollout, modelrelease), action and confidence.",
            ["kind", "action", "confidence"],
            registry=self.registry,
        )
        self.regressions = {
            which: Counter(
                f"rollwise_regression_{which}",
                f"Post-promotion regression episodes ({which.replace('_', ' ')}), once each.",
                ["namespace", "name", "severity", "reason"],
                registry=self.registry,
            )
            for which in ("detected", "confirmed", "false_positive")
        }
        self.rollout_info = Gauge(
            "rollwise_rollout_info",
            "1 for each Rollout, with its phase and traffic router.",
            ["namespace", "rollout", "phase", "router"],
            registry=self.registry,
        )
        self.revision_info = Gauge(
            "rollwise_rollout_revision_info",
            "1 for the stable, the canary and the baseline revision of each Rollout "
            "(role: stable, canary, baseline).",
            ["namespace", "rollout", "role", "revision"],
            registry=self.registry,
        )
        self.release_info = Gauge(
            "rollwise_model_release_info",
            "1 for each ModelRelease, with its model, version and stage.",
            ["namespace", "release", "model", "version", "stage"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "rollwise_reconcile_duration_seconds",
            "Duration of one reconcile pass (observe, decide, act, persist).",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.api_errors = Counter(
            "rollwise_api_errors",
            "Failed calls to the Kubernetes API or a metric provider.",
            ["operation", "code"],
            registry=self.registry,
        )
        self.status_writes = Counter(
            "rollwise_status_writes",
            "Status patches written (passes that changed nothing write none).",
            registry=self.registry,
        )
        self.events_posted = Counter(
            "rollwise_events_posted",
            "Kubernetes Events created from the objects' event logs (re-posts that found the "
            "event already there are not counted).",
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "rollwise_events_lost",
            "Logged events pushed out of an object's event log before they could be posted "
            "(only after a long Kubernetes API outage; alert on any increase).",
            registry=self.registry,
        )
        self.notifications = Counter(
            "rollwise_notifications",
            "Notifications that ended, by sink type and result (delivered, failed, refused).",
            ["sink", "result"],
            registry=self.registry,
        )
        self.webhook_calls = Counter(
            "rollwise_webhook_calls",
            "Gating webhook calls, by webhook type and answer (2xx, other, none).",
            ["type", "answer"],
            registry=self.registry,
        )
        self.notifications_dropped = Counter(
            "rollwise_notifications_dropped",
            "Notifications dropped because the delivery queue was full.",
            registry=self.registry,
        )
        self.notification_queue = Gauge(
            "rollwise_notification_queue",
            "Notifications waiting for delivery (queued, parked or waiting for a retry).",
            registry=self.registry,
        )
        self.releases = Gauge(
            "rollwise_model_releases",
            "ModelReleases by stage.",
            ["stage"],
            registry=self.registry,
        )
        for phase in Phase:
            self.rollouts.labels(phase=phase.value).set(0)
        for stage in Stage:
            self.releases.labels(stage=stage.value).set(0)
        for sink in ("webhook", "cloudevents", "slack"):
            for result in ("delivered", "failed", "refused"):
                self.notifications.labels(sink=sink, result=result)
        self._stages: dict[tuple[str, str], str] = {}
        self._phases: dict[tuple[str, str], str] = {}
        self._metric_names: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._rollout_info: dict[tuple[str, str], tuple[str, str]] = {}
        self._release_info: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._rollback_reasons: dict[tuple[str, str], set[str]] = {}
        self._revisions: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        self._server: Any = None

    # ------------------------------------------------------------------ updates

    def observe_status(
        self,
        namespace: str,
        rollout: str,
        phase: str | None,
        canary_weight: int,
        router: str = "",
        *,
        revisions: dict[str, str] | None = None,
    ) -> None:
        """Record a Rollout's phase, router, weight and (role -> revision) after a pass."""
        key = (namespace, rollout)
        labels = (phase or "Unknown", router)
        with self._lock:
            self._phases[key] = phase or "Unknown"
            self._recount()
            before = self._rollout_info.get(key)
            self._rollout_info[key] = labels
        if before is not None and before != labels:
            with contextlib.suppress(KeyError):
                self.rollout_info.remove(namespace, rollout, *before)
        self.rollout_info.labels(namespace, rollout, *labels).set(1)
        self.canary_weight.labels(namespace=namespace, rollout=rollout).set(canary_weight)
        if revisions is not None:
            self._set_revisions(namespace, rollout, revisions)

    def _set_revisions(self, namespace: str, rollout: str, revisions: dict[str, str]) -> None:
        now = {(role, revision) for role, revision in revisions.items() if revision}
        with self._lock:
            before = self._revisions.get((namespace, rollout), set())
            self._revisions[(namespace, rollout)] = now
        for role, revision in before - now:
            with contextlib.suppress(KeyError):
                self.revision_info.remove(namespace, rollout, role, revision)
        for role, revision in now - before:
            self.revision_info.labels(namespace, rollout, role, revision).set(1)

    def observe_release(
        self,
        namespace: str,
        release: str,
        stage: str | None,
        model: str = "",
        version: str = "",
    ) -> None:
        """Record a ModelRelease's stage after a pass (None: the release is gone)."""
        key = (namespace, release)
        labels = (model, version, stage or "")
        with self._lock:
            before = self._release_info.pop(key, None)
            if stage is None:
                self._stages.pop(key, None)
            else:
                self._stages[key] = stage
                self._release_info[key] = labels
            counts: dict[str, int] = {s.value: 0 for s in Stage}
            for value in self._stages.values():
                counts[value] = counts.get(value, 0) + 1
        for value, count in counts.items():
            self.releases.labels(stage=value).set(count)
        if before is not None and (stage is None or before != labels):
            with contextlib.suppress(KeyError):
                self.release_info.remove(namespace, release, *before)
        if stage is not None:
            self.release_info.labels(namespace, release, *labels).set(1)

    def measured(self, namespace: str, rollout: str, metric: str, verdict: str) -> None:
        with self._lock:
            self._metric_names.setdefault((namespace, rollout), set()).add((metric, verdict))
        self.measurements.labels(
            namespace=namespace, rollout=rollout, metric=metric, verdict=verdict
        ).inc()

    def rolled_back(self, namespace: str, rollout: str, reason: str = "RolledBack") -> None:
        with self._lock:
            self._rollback_reasons.setdefault((namespace, rollout), set()).add(reason)
        self.rollbacks.labels(namespace=namespace, rollout=rollout, reason=reason).inc()

    def decided(self, kind: str, action: str, confidence: str) -> None:
        """A changed decision (its DecisionChanged event), counted once."""
        self.decisions.labels(kind=kind, action=action, confidence=confidence).inc()

    def regression(self, which: str, namespace: str, name: str, severity: str, reason: str) -> None:
        """One regression episode detected, confirmed or found a false positive."""
        self.regressions[which].labels(
            namespace=namespace, name=name, severity=severity, reason=reason
        ).inc()

    def regressions_stored(
        self,
        namespace: str,
        name: str,
        before: PostPromotionStatus | None,
        after: PostPromotionStatus | None,
    ) -> None:
        """The episodes a stored pass moved, from the watch it read to the one it stored:
        each detection, confirmation and false positive counted once (:func:`counted`)."""
        for which, kpi in counted(before, after):
            self.regression(which.value, namespace, name, kpi.severity.value, kpi.reason)

    def api_error(self, operation: str, code: str) -> None:
        self.api_errors.labels(operation=operation, code=code).inc()

    def status_written(self) -> None:
        self.status_writes.inc()

    def event_posted(self) -> None:
        self.events_posted.inc()

    def events_lost(self, count: int) -> None:
        self.events_dropped.inc(count)

    def notified(self, sink: str, result: str) -> None:
        self.notifications.labels(sink=sink, result=result).inc()

    def webhook_called(self, type_: str, code: int | None) -> None:
        answer = "none" if code is None else "2xx" if 200 <= code < 300 else "other"
        self.webhook_calls.labels(type=type_, answer=answer).inc()

    def notification_dropped(self) -> None:
        self.notifications_dropped.inc()

    def forget(self, namespace: str, rollout: str) -> None:
        """Drop every per-rollout series of a deleted Rollout."""
        key = (namespace, rollout)
        with self._lock:
            self._phases.pop(key, None)
            self._recount()
            pairs = self._metric_names.pop(key, set())
            info = self._rollout_info.pop(key, None)
            reasons = self._rollback_reasons.pop(key, set())
            revisions = self._revisions.pop(key, set())
        removals: list[tuple[Any, tuple[str, ...]]] = [(self.canary_weight, (namespace, rollout))]
        removals += [(self.rollbacks, (namespace, rollout, reason)) for reason in reasons]
        removals += [(self.revision_info, (namespace, rollout, *pair)) for pair in revisions]
        if info is not None:
            removals.append((self.rollout_info, (namespace, rollout, *info)))
        for family, values in removals:
            with contextlib.suppress(KeyError):
                family.remove(*values)
        for metric, verdict in pairs:
            with contextlib.suppress(KeyError):
                self.measurements.remove(namespace, rollout, metric, verdict)

    def _recount(self) -> None:
        counts: dict[str, int] = {phase.value: 0 for phase in Phase}
        for phase in self._phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            self.rollouts.labels(phase=phase).set(count)

    # ------------------------------------------------------------------ serving

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve the registry on ``port`` (0: not served); returns the bound port (0 if off)."""
        if port == 0:
            return 0
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (tests and diagnostics)."""
        value = self.registry.get_sample_value(name, labels or {})
        return None if value is None else float(value)

    def series(self) -> Iterable[str]:
        """Names of every sample currently exposed."""
        for family in self.registry.collect():
            for sample in family.samples:
                yield sample.name


__all__ = ["OperatorMetrics"]
