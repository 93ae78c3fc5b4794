"""The pure decision core.

Everything here is a function of its arguments: specs, statuses, observations and ``now``.
Nothing here performs I/O, reads the clock or the environment, or imports kopf, kubernetes,
HTTP clients or asyncio (an import-linter contract keeps it so).
"""
