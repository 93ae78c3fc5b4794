"""pytest fixtures for Prometheus, the synthetic service and MLflow.

Costly parts are shared per test session (per xdist worker): one asyncio loop thread, one
metrics hub (``ServiceRegistry``) and one Prometheus scraping that hub every 250 ms. Each test
gets DemoServices with revision names of its own, so tests never see each other's series.
Prometheus 2.42 scrapes a new target only after about 5 s (its service discovery applies
changes every 5 s); sharing one instance pays that once per worker, not per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hack.lab._support import BackgroundLoop
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import Behaviour, DemoService, ServiceRegistry

FAST_SCRAPE = "250ms"


def unique_revision(prefix: str = "rev") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def lab_loop() -> Iterator[BackgroundLoop]:
    """An asyncio loop on a background thread, for the lab's async parts."""
    loop = BackgroundLoop("lab-tests").start()
    yield loop
    loop.stop()


@pytest.fixture(scope="session")
def service_registry(lab_loop: BackgroundLoop) -> Iterator[ServiceRegistry]:
    """The session's DemoService registry and its combined metrics endpoint (the hub)."""
    registry = ServiceRegistry(seed=7)
    lab_loop.run(registry.start_hub())
    yield registry
    lab_loop.run(registry.stop())


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, service_registry: ServiceRegistry
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping the session's metrics hub every 250 ms, first scrape done."""
    server = PrometheusServer(
        [service_registry.hub_address],
        scrape_interval=FAST_SCRAPE,
        data_dir=tmp_path_factory.mktemp("prometheus"),
    )
    with server:
        server.wait_for_targets_up([service_registry.hub_address], timeout=15)
        yield server


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Starts Prometheus instances of the test's own (stopped at the end of the test)."""
    started: list[PrometheusServer] = []

    def make(targets: list[str], **kwargs: object) -> PrometheusServer:
        data_dir = tmp_path / f"prometheus-{len(started)}"
        server = PrometheusServer(targets, data_dir=data_dir, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.close()


@pytest.fixture
def make_demo_service(
    lab_loop: BackgroundLoop, service_registry: ServiceRegistry
) -> Iterator[Callable[..., DemoService]]:
    """Starts DemoServices in the session's registry (scraped through the hub); removes them
    at the end of the test. ``make(service="demo", revision=None, **behaviour)``."""
    mine: list[str] = []

    def make(service: str = "demo", revision: str | None = None, **behaviour: float) -> DemoService:
        rev = revision or unique_revision()
        mine.append(rev)
        chosen = Behaviour(**behaviour) if behaviour else None
        return lab_loop.run(service_registry.ensure(service, rev, chosen))

    yield make
    for rev in mine:
        lab_loop.run(service_registry.remove(rev))


@pytest.fixture
def demo_service(make_demo_service: Callable[..., DemoService]) -> DemoService:
    """One running DemoService (service ``demo``, a unique revision, no errors)."""
    return make_demo_service()


# ------------------------------------------------------------------------- MLflow (registry)

# Kept with its fixture so the MLflow block stays one self-contained unit of this file.
from hack.lab.mlflow import MLFLOW_BINARY, MLflowServer, mlflow_missing_message  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLflowServer]:
    """A real MLflow tracking server (sqlite registry) per session (per xdist worker), from
    ``.venv-mlflow``; tests isolate themselves with model names of their own. Fails (never
    skips) when MLflow is not installed: ``make test`` installs it."""
    if not MLFLOW_BINARY.exists():
        pytest.fail(mlflow_missing_message(), pytrace=False)
    with MLflowServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server
