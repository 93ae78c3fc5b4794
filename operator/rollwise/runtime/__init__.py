"""The operator process: kopf handlers, the reconcile loop, settings and metrics."""
