"""The MLflow alias store's mapping of answers a healthy lab server never gives (overload,
a proxy's error page, credentials), from canned responses on a loopback HTTP server; the
real server's answers are covered in tests/lab/test_alias_store_mlflow.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rollwise.adapters.bounded_http import DEFAULT_MAX_BYTES
from rollwise.adapters.errors import (
    ModelVersionNotFound,
    RegistryError,
    RegistryUnavailable,
)
from rollwise.adapters.gates.digest import ArtifactChecker, mlflow_recorded_digest
from rollwise.adapters.registry.mlflow import MLflowAliasStore, MLflowRegistry

Canned = tuple[int, dict[str, str], bytes]


class CannedServer:
    """Answers every request with ``self.answer``; records the requests' headers and paths."""

    def __init__(self) -> None:
        self.answer: Canned = (200, {}, b"{}")
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                outer.seen.append((self.command, self.path, dict(self.headers)))
                status, headers, body = outer.answer
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _reply

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.close()


def store(url: str, *, token: str | None = None, timeout: float = 10.0) -> MLflowAliasStore:
    return MLflowAliasStore(MLflowRegistry("main", url, token=token), timeout=timeout)


def error(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("answer", "cls", "retryable", "retry_after"),
    [
        pytest.param(
            (503, {"Retry-After": "7"}, b"busy"), RegistryUnavailable, True, 7.0, id="503"
        ),
        pytest.param((429, {}, b"{}"), RegistryUnavailable, True, None, id="429"),
        pytest.param(
            (502, {}, b"<html>bad gateway</html>"), RegistryUnavailable, True, None, id="502"
        ),
        pytest.param(
            (401, {}, error("UNAUTHENTICATED", "no token")), RegistryError, False, None, id="401"
        ),
        pytest.param((200, {}, b"<html>login</html>"), RegistryError, False, None, id="not-json"),
        pytest.param(
            (404, {}, error("RESOURCE_DOES_NOT_EXIST", "Registered Model with name=m not found")),
            ModelVersionNotFound,
            False,
            None,
            id="unknown-model",
        ),
    ],
)
def test_answers_are_mapped(
    canned: CannedServer,
    answer: Canned,
    cls: type[RegistryError],
    retryable: bool,
    retry_after: float | None,
) -> None:
    canned.answer = answer
    with pytest.raises(RegistryError) as caught:
        store(canned.url).get("m", "production")
    assert type(caught.value) is cls
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == retry_after


def test_unset_alias_is_none_on_mlflow_3(canned: CannedServer) -> None:
    canned.answer = (
        400,
        {},
        error("INVALID_PARAMETER_VALUE", "Registered model alias x not found."),
    )
    assert store(canned.url).get("m", "x") is None


def test_other_invalid_parameter_is_an_error(canned: CannedServer) -> None:
    canned.answer = (400, {}, error("INVALID_PARAMETER_VALUE", "Missing value for 'name'"))
    with pytest.raises(RegistryError, match="INVALID_PARAMETER_VALUE"):
        store(canned.url).get("m", "x")


def test_bearer_token_and_base_path(canned: CannedServer) -> None:
    canned.answer = (
        200,
        {},
        json.dumps({"model_version": {"version": "3", "source": "s3://m/3"}}).encode(),
    )
    got = store(canned.url + "/", token="s3cret").get("m", "production")
    assert got is not None
    assert (got.version, got.uri, got.digest) == ("3", "s3://m/3", None)
    method, path, headers = canned.seen[-1]
    assert method == "GET"
    assert path == "/api/2.0/mlflow/registered-models/alias?name=m&alias=production"
    assert headers["Authorization"] == "Bearer s3cret"


def test_a_server_that_does_not_answer_in_time_is_unavailable(canned: CannedServer) -> None:
    hold = threading.Event()

    def slow(handler: BaseHTTPRequestHandler) -> None:
        # Never answers (until the test ends): the client's read timeout must fire.
        hold.wait(5)

    canned.httpd.RequestHandlerClass.do_GET = slow  # type: ignore[attr-defined]
    try:
        with pytest.raises(RegistryUnavailable, match="unreachable"):
            store(canned.url, timeout=0.3).get("m", "production")
    finally:
        hold.set()


#: What an internal page behind the registry's address could hold.
PAGE = b"<html>internal admin page: db-password=hunter2</html>"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param((200, {}, PAGE), id="not-json"),
        pytest.param((500, {}, PAGE), id="server-error"),
        pytest.param((403, {}, PAGE), id="forbidden"),
        pytest.param(
            (400, {}, error("INVALID_PARAMETER_VALUE", "db-password=hunter2")), id="mlflow-message"
        ),
        pytest.param((400, {}, error("db-password=hunter2", "x")), id="not-an-error-code"),
    ],
)
def test_no_answer_text_reaches_an_error_message(canned: CannedServer, answer: Canned) -> None:
    canned.answer = answer
    with pytest.raises(RegistryError) as caught:
        store(canned.url).get("m", "production")
    assert "hunter2" not in caught.value.message
    assert "registry main" in caught.value.message


def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else(
    canned: CannedServer,
) -> None:
    elsewhere = CannedServer()
    try:
        canned.answer = (302, {"Location": elsewhere.url + "/steal"}, b"")
        with pytest.raises(RegistryError):
            store(canned.url, token="s3cret").get("m", "production")
        assert elsewhere.seen == []
    finally:
        elsewhere.close()


def test_an_answer_larger_than_the_bound_is_refused_unread(canned: CannedServer) -> None:
    """A registry answering more than ``DEFAULT_MAX_BYTES`` gets an error naming the bound,
    not gigabytes held in the operator's memory."""
    canned.answer = (200, {}, b'{"x": "' + b"a" * (DEFAULT_MAX_BYTES + 10) + b'"}')
    with pytest.raises(RegistryError, match="more than the limit") as raised:
        store(canned.url).get("m", "production")
    assert not isinstance(raised.value, RegistryUnavailable), "a bad answer is not retried"
    assert "aaaa" not in str(raised.value)


def test_the_digest_gate_reads_mlflow_within_the_bound_and_follows_no_redirect(
    canned: CannedServer,
) -> None:
    registry = MLflowRegistry("main", canned.url, token="s3cret")
    gate = ArtifactChecker(max_bytes=1024, timeout=5, registries={"main": registry})
    canned.answer = (200, {}, b'{"x": "' + b"a" * (DEFAULT_MAX_BYTES + 10) + b'"}')
    with pytest.raises(RegistryError, match="more than the limit"):
        mlflow_recorded_digest(gate.mlflow_session, registry, "m", "1")
    elsewhere = CannedServer()
    try:
        canned.answer = (302, {"Location": elsewhere.url + "/steal"}, b"")
        with pytest.raises(RegistryError, match="not followed"):
            mlflow_recorded_digest(gate.mlflow_session, registry, "m", "1")
        assert elsewhere.seen == []
    finally:
        elsewhere.close()
