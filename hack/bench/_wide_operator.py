"""A what-if launcher for the scale benchmark: ``rollwise-operator`` with a wider worker pool.

    python -m hack.bench._wide_operator THREADS [operator arguments...]

The operator runs every blocking API call through ``asyncio.to_thread``, i.e. the event
loop's default executor (min(32, cpus + 4) threads: 6 on 2 cores), and the ``kubernetes``
client keeps cpus x 5 connections. This launcher raises both to THREADS before starting the
unchanged operator, so that ``python -m hack.bench.scale --operator-threads THREADS`` can show
whether that pool is what limits step lag. It changes no operator code and is not a fix.
"""

from __future__ import annotations

import concurrent.futures.thread
import sys
from typing import Any


def widen(threads: int) -> None:
    """Default executors get ``threads`` workers; kubernetes client pools hold as many."""
    from kubernetes.client import configuration  # noqa: PLC0415 - after argument parsing

    executor_init = concurrent.futures.thread.ThreadPoolExecutor.__init__

    def executor(self: Any, max_workers: int | None = None, *args: Any, **kwargs: Any) -> None:
        executor_init(self, max_workers or threads, *args, **kwargs)

    config_init = configuration.Configuration.__init__

    def config(self: Any, *args: Any, **kwargs: Any) -> None:
        config_init(self, *args, **kwargs)
        self.connection_pool_maxsize = max(self.connection_pool_maxsize, threads)

    concurrent.futures.thread.ThreadPoolExecutor.__init__ = executor  # type: ignore[method-assign]
    configuration.Configuration.__init__ = config  # type: ignore[method-assign]


def main() -> int:
    threads = int(sys.argv[1])
    widen(threads)
    from rollwise.runtime.main import main as operator_main  # noqa: PLC0415

    sys.argv = ["rollwise-operator", *sys.argv[2:]]
    return operator_main()


if __name__ == "__main__":
    raise SystemExit(main())
