"""Rego bundles named by URL and digest in the policy snapshot: downloaded from a real HTTP
server on loopback, checked against the pinned digest, unpacked as OPA lays a bundle out, and
evaluated with the snapshot's inline modules."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rollwise.adapters.gates.policy import policy_digest
from rollwise.adapters.gates.rego_bundle import BundleError, bundle_refs, unpack
from rollwise.core.modelrelease.observations import (
    GATE_POLICY_ACCEPT,
    GATE_POLICY_PROMOTE,
    Approval,
)
from rollwise.core.modelrelease.status import GateStatus
from tests.unit.adapters.test_gates_http import evaluator
from tests.unit.adapters.test_gates_rego import StubConfigMaps, spec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

ACCEPT = """package registry.accept
import rego.v1

default allow := false
allow if startswith(input.change.ticket, "CHG-")
"""

PROMOTE = """package registry.promote
import rego.v1

default allow := false
allow if count(deny) == 0

deny contains msg if {
    some a in input.approvals
    a.role == "security"
    not a.user in data.org.security.leads
    msg := sprintf("security approval by %v is not from a security lead", [a.user])
}
"""


def bundle(files: dict[str, str]) -> bytes:
    """A gzipped tar as ``opa build`` writes one."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for path, text in files.items():
            body = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return raw.getvalue()


BUNDLE = bundle(
    {
        "/.manifest": json.dumps({"revision": "r1", "roots": ["registry/promote", "org"]}),
        "/registry/promote/policy.rego": PROMOTE,
        "/org/security/data.json": json.dumps({"leads": ["erin"]}),
    }
)
DIGEST = "sha256:" + hashlib.sha256(BUNDLE).hexdigest()


class Server:
    """Serves ``/bundle.tar.gz`` on loopback and counts the requests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/bundle.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server(BUNDLE)
    yield found
    found.close()


def snapshot(url: str, digest: str = DIGEST) -> dict[str, str]:
    return {
        "accept.rego": ACCEPT,
        "promote.bundle": json.dumps({"url": url, "digest": digest}),
    }


def evaluate(data: dict[str, str], **kw: Any) -> dict[str, Any]:
    gates = evaluator(policy_configmap=("ops", "policy"))
    gates.configmaps = StubConfigMaps({("ops", "policy"): {"data": data}})  # type: ignore[assignment]
    results = gates.evaluate_policies(
        "ml",
        "fraud-7",
        spec(policyDigest=policy_digest(data)),
        status=None,
        gates=(),
        approvals=kw.get("approvals", ()),
        now=NOW,
    )
    return {r.name: r for r in results} | {"_gates": gates}


def test_a_bundle_from_a_url_is_evaluated_with_the_inline_modules(server: Server) -> None:
    data = snapshot(server.url)
    bob = (Approval("security", "bob", NOW, "7"),)
    found = evaluate(data, approvals=bob)
    assert found[GATE_POLICY_ACCEPT].status is GateStatus.PASSED
    promote = found[GATE_POLICY_PROMOTE]
    assert promote.status is GateStatus.FAILED
    # The rule and the data both came from the bundle (data.org.security from its data.json).
    assert promote.message.endswith(
        "denies promote: security approval by bob is not from a security lead"
    )
    erin = (Approval("security", "erin", NOW, "7"),)
    assert evaluate(data, approvals=erin)[GATE_POLICY_PROMOTE].status is GateStatus.PASSED


def test_a_checked_bundle_is_fetched_once(server: Server) -> None:
    data = snapshot(server.url)
    gates = evaluate(data)["_gates"]
    for _ in range(3):
        gates.evaluate_policies(
            "ml",
            "fraud-7",
            spec(policyDigest=policy_digest(data)),
            status=None,
            gates=(),
            approvals=(),
            now=NOW,
        )
    assert server.requests == 1


def test_a_bundle_that_is_not_the_pinned_one_is_refused(server: Server) -> None:
    other = "sha256:" + "b" * 64
    found = evaluate(snapshot(server.url, other))
    for gate in (GATE_POLICY_ACCEPT, GATE_POLICY_PROMOTE):
        assert found[gate].status is GateStatus.FAILED
        assert (
            f"has digest {DIGEST[:19]}, not the pinned sha256:bbbbbbbbbbbb" in found[gate].message
        )
        assert "not evaluated (no evidence, no promotion)" in found[gate].message


def test_an_unreachable_bundle_leaves_the_policy_pending() -> None:
    closed = Server(BUNDLE)
    url = closed.url
    closed.close()
    found = evaluate(snapshot(url))
    assert found[GATE_POLICY_PROMOTE].status is GateStatus.PENDING
    assert "promote.bundle" in found[GATE_POLICY_PROMOTE].message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "promote.bundle is not JSON"),
        ('["x"]', "promote.bundle is not a JSON object"),
        ('{"url": "ftp://x", "digest": "sha256:' + "a" * 64 + '"}', "url must be an http(s) URL"),
        ('{"url": "https://x/b.tar.gz", "digest": "md5:1"}', "digest must be sha256:"),
    ],
)
def test_a_bad_reference_is_refused(value: str, message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)):
        bundle_refs({"promote.bundle": value})


def test_unpack_places_data_at_its_directory_and_refuses_what_is_not_a_bundle() -> None:
    unpacked = unpack(BUNDLE, "b")
    assert [name for name, _ in unpacked.modules] == ["b:registry/promote/policy.rego"]
    assert [json.loads(text) for _, text in unpacked.data] == [
        {"org": {"security": {"leads": ["erin"]}}}
    ]
    with pytest.raises(BundleError, match="is not a gzipped tar bundle"):
        unpack(b"plain text", "b")
    with pytest.raises(BundleError, match="is not JSON"):
        unpack(bundle({"x/data.json": "{"}), "b")
