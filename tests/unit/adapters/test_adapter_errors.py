"""The adapter error hierarchy and the mapping of Kubernetes client failures onto it."""

from __future__ import annotations

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from rollwise.adapters import errors as E
from rollwise.adapters.kube import error_from_status, translate


@pytest.mark.parametrize(
    ("cls", "parent", "retryable"),
    [
        pytest.param(E.NotFound, E.KubeError, False, id="not-found"),
        pytest.param(E.Conflict, E.KubeError, True, id="conflict"),
        pytest.param(E.Forbidden, E.KubeError, False, id="forbidden"),
        pytest.param(E.Invalid, E.KubeError, False, id="invalid"),
        pytest.param(E.NotOwned, E.KubeError, False, id="not-owned"),
        pytest.param(E.Unavailable, E.KubeError, True, id="unavailable"),
        pytest.param(E.RouteNotFound, E.RouterError, False, id="route-not-found"),
        pytest.param(E.RouteMisconfigured, E.RouterError, False, id="route-misconfigured"),
        pytest.param(E.ProviderUnavailable, E.ProviderError, True, id="provider-unavailable"),
        pytest.param(E.QueryError, E.ProviderError, False, id="query-error"),
        pytest.param(E.RegistryUnavailable, E.RegistryError, True, id="registry-unavailable"),
        pytest.param(E.ModelVersionNotFound, E.RegistryError, False, id="version-not-found"),
        pytest.param(E.AliasConflict, E.RegistryError, True, id="alias-conflict"),
        pytest.param(E.AliasNotVerified, E.RegistryError, True, id="alias-not-verified"),
    ],
)
def test_hierarchy_and_retryable_defaults(
    cls: type[E.AdapterError], parent: type[E.AdapterError], retryable: bool
) -> None:
    assert issubclass(cls, parent)
    assert issubclass(parent, E.AdapterError)
    error = cls("boom")
    assert error.retryable is retryable
    assert str(error) == error.message == "boom"


def test_an_instance_may_override_retryable() -> None:
    assert E.KubeError("x", retryable=True).retryable is True
    assert E.Conflict("x").retryable is True
    assert E.Conflict("x", retryable=False).retryable is False


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(404, E.NotFound, id="404"),
        pytest.param(409, E.Conflict, id="409"),
        pytest.param(401, E.Forbidden, id="401"),
        pytest.param(403, E.Forbidden, id="403"),
        pytest.param(400, E.Invalid, id="400"),
        pytest.param(422, E.Invalid, id="422"),
        pytest.param(429, E.Unavailable, id="429"),
        pytest.param(500, E.Unavailable, id="500"),
        pytest.param(504, E.Unavailable, id="504"),
        pytest.param(410, E.KubeError, id="410"),
        pytest.param(None, E.KubeError, id="none"),
    ],
)
def test_status_codes(status: int | None, cls: type[E.KubeError]) -> None:
    error = error_from_status(status, "msg", retry_after=2.0)
    assert type(error) is cls
    assert error.status == status


def test_api_exception_message_comes_from_the_status_body() -> None:
    exc = ApiException(status=409, reason="Conflict")
    exc.body = '{"kind":"Status","message":"the object has been modified","code":409}'
    mapped = translate(exc, "patch httproutes ns/web")
    assert isinstance(mapped, E.Conflict)
    assert str(mapped) == "patch httproutes ns/web: the object has been modified (409)"


def test_api_exception_with_a_plain_body_keeps_it() -> None:
    exc = ApiException(status=502, reason="Bad Gateway")
    exc.body = "upstream connect error"
    mapped = translate(exc, "get x")
    assert isinstance(mapped, E.Unavailable)
    assert "upstream connect error" in str(mapped)


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(urllib3.exceptions.ProtocolError("connection reset"), id="protocol"),
        pytest.param(ConnectionRefusedError(111, "refused"), id="refused"),
        pytest.param(TimeoutError("timed out"), id="timeout"),
    ],
)
def test_transport_failures_are_unavailable(exc: Exception) -> None:
    mapped = translate(exc, "get x")
    assert isinstance(mapped, E.Unavailable)
    assert mapped.retryable
    assert mapped.status is None


def test_other_exceptions_are_not_translated() -> None:
    assert translate(KeyError("bug"), "get x") is None
