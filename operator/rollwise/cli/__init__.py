"""The ``kubectl rollwise`` plugin."""
