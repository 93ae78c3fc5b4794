"""Gates over HTTP against a real local server (127.0.0.1, port 0): artifact digests and SBOM
URLs with their size and time bounds, and ``GateEvaluator`` (which gates apply, caching and
re-checks, results that never raise)."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from rollwise.adapters.gates import GateEvaluator
from rollwise.adapters.gates.access import EvidenceAccess, evidence_access
from rollwise.adapters.gates.digest import ArtifactChecker
from rollwise.adapters.kube import KubeAPI
from rollwise.core.modelrelease.observations import (
    GATE_ARTIFACT,
    GATE_FREEZE,
    GATE_POLICY,
    GATE_SBOM,
)
from rollwise.core.modelrelease.status import GateStatus
from rollwise.core.spec_release import ModelReleaseSpec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@dataclass
class Route:
    body: bytes
    status: int = 200
    delay: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between chunks of 64 bytes
    content_length: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the status line's phrase; None: the standard one


class Server:
    """A real HTTP server on loopback serving fixed routes and counting requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with owner.lock:
                    owner.hits[path] = owner.hits.get(path, 0) + 1
                route = owner.routes.get(path, Route(b"not found", status=404))
                time.sleep(route.delay)
                try:
                    self.send_response(route.status, route.reason)
                    for key, value in route.headers.items():
                        self.send_header(key, value)
                    if route.content_length:
                        self.send_header("Content-Length", str(len(route.body)))
                    else:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if route.trickle:
                        for start in range(0, len(route.body), 64):
                            self.wfile.write(route.body[start : start + 64])
                            self.wfile.flush()
                            time.sleep(route.trickle)
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if not route.content_length:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url + path


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def kube_nowhere() -> KubeAPI:
    """A KubeAPI whose API server refuses connections (a real failure, at once)."""
    config = client.Configuration(host=f"http://127.0.0.1:{closed_port()}")
    return KubeAPI(client.ApiClient(config), timeout=2)


def spec(uri: str, digest: str, **extra: Any) -> ModelReleaseSpec:
    body: dict[str, Any] = {
        "model": "fraud",
        "version": "7",
        "artifact": {"uri": uri, "digest": digest},
        "change": {"ticket": "CHG-1"},
        "serving": {"inferenceServiceRef": {"name": "fraud"}},
        **extra,
    }
    return ModelReleaseSpec.model_validate(body)


#: The evidence policy of these tests: plain HTTP from the loopback servers they start.
LOOPBACK = evidence_access(schemes=["http"], hosts=["127.0.0.1"])


def checker(
    max_bytes: int = 1 << 20, timeout: float = 5.0, access: EvidenceAccess = LOOPBACK
) -> ArtifactChecker:
    return ArtifactChecker(max_bytes=max_bytes, timeout=timeout, access=access)


# ----------------------------------------------------------------------------- artifacts


def test_http_artifact_match_and_mismatch(server: Server) -> None:
    body = bytes(range(256)) * 5000  # about 1.2 MiB, several chunks
    url = server.serve("/models/fraud/7/model.onnx", Route(body))
    assert checker(max_bytes=2 << 20).check(url, sha(body)).status is GateStatus.PASSED
    bad = checker(max_bytes=2 << 20).check(url, sha(b"other"))
    assert bad.status is GateStatus.FAILED
    assert f"has {sha(body)[:19]}" in bad.message


def test_http_digest_is_over_the_bytes_as_sent(server: Server) -> None:
    packed = gzip.compress(b"weights" * 1000)
    url = server.serve("/m.gz", Route(packed, headers={"Content-Encoding": "gzip"}))
    assert checker().check(url, sha(packed)).status is GateStatus.PASSED


def test_declared_length_over_the_limit_fails_without_download(server: Server) -> None:
    url = server.serve("/big", Route(b"x" * 4096))
    outcome = checker(max_bytes=1024).check(url, sha(b"x" * 4096))
    assert outcome.status is GateStatus.FAILED
    assert "larger than the limit of 1.0 KiB" in outcome.message


def test_undeclared_length_over_the_limit_fails_while_streaming(server: Server) -> None:
    url = server.serve("/stream", Route(b"y" * (3 << 20), content_length=False))
    started = time.monotonic()
    outcome = checker(max_bytes=1 << 20).check(url, sha(b""))
    assert outcome.status is GateStatus.FAILED
    assert "larger than the limit of 1.0 MiB" in outcome.message
    assert time.monotonic() - started < 5


def test_silent_server_is_pending_after_the_timeout(server: Server) -> None:
    url = server.serve("/slow", Route(b"z", delay=3.0))
    started = time.monotonic()
    outcome = checker(timeout=0.5).check(url, sha(b"z"))
    assert outcome.status is GateStatus.PENDING
    assert "no answer within 0.5s" in outcome.message
    assert time.monotonic() - started < 2.5


def test_trickling_server_is_pending_after_the_time_budget(server: Server) -> None:
    url = server.serve("/trickle", Route(b"t" * 64 * 40, trickle=0.05))
    started = time.monotonic()
    outcome = checker(timeout=0.5).check(url, sha(b"t" * 64 * 40))
    assert outcome.status is GateStatus.PENDING
    assert "took longer than 0.5s" in outcome.message
    assert time.monotonic() - started < 1.5


def test_http_error_and_unreachable_are_pending(server: Server) -> None:
    missing = checker().check(server.url + "/nope", sha(b""))
    assert missing.status is GateStatus.PENDING
    assert "HTTP 404" in missing.message
    broken = checker().check(server.serve("/e", Route(b"boom", status=503)), sha(b""))
    assert broken.status is GateStatus.PENDING
    assert "HTTP 503" in broken.message
    refused = checker().check(f"http://127.0.0.1:{closed_port()}/m", sha(b""))
    assert refused.status is GateStatus.PENDING
    assert "unreachable" in refused.message


# --------------------------------------------------------------------------- the evaluator


class FakeClock:
    """Monotonic seconds the test moves by hand (the caches' TTL)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def evaluator(clock: FakeClock | None = None, **kwargs: Any) -> GateEvaluator:
    options: dict[str, Any] = {
        "policy_configmap": None,
        "freeze_configmap": None,
        "access": LOOPBACK,
        "max_artifact_bytes": 1 << 20,
        "artifact_timeout": 5.0,
        "sbom_timeout": 1.0,
        **kwargs,
    }
    return GateEvaluator(kube_nowhere(), clock=clock or FakeClock(), **options)


def by_name(results: tuple[Any, ...]) -> dict[str, Any]:
    return {r.name: r for r in results}


def test_gates_that_apply_in_order(server: Server) -> None:
    url = server.serve("/a", Route(b"A"))
    plain = evaluator().evaluate("ml", spec(url, sha(b"A")), NOW)
    assert [r.name for r in plain] == [GATE_ARTIFACT, GATE_FREEZE]
    assert [r.status for r in plain] == [GateStatus.PASSED, GateStatus.PASSED]
    assert plain[1].message == "no freeze window open"
    full = evaluator().evaluate(
        "ml",
        spec(
            url,
            sha(b"A"),
            policyDigest=sha(b"policy"),
            gates={"sbom": {"url": server.url + "/sbom.json"}},
        ),
        NOW,
    )
    assert [r.name for r in full] == [GATE_ARTIFACT, GATE_SBOM, GATE_POLICY, GATE_FREEZE]
    assert all(r.checked_at == NOW for r in full)


def test_artifact_match_is_cached_for_the_process(server: Server) -> None:
    url = server.serve("/a", Route(b"A"))
    clock = FakeClock()
    gates = evaluator(clock)
    for _ in range(3):
        assert gates.evaluate("ml", spec(url, sha(b"A")), NOW)[0].status is GateStatus.PASSED
        clock.now += 3600
    assert server.hits["/a"] == 1


def test_artifact_mismatch_is_rechecked_after_the_ttl(server: Server) -> None:
    url = server.serve("/a", Route(b"old"))
    clock = FakeClock()
    gates = evaluator(clock, retry_ttl=60)
    release = spec(url, sha(b"new"))
    assert gates.evaluate("ml", release, NOW)[0].status is GateStatus.FAILED
    server.routes["/a"] = Route(b"new")  # the artifact is fixed
    clock.now += 30
    assert gates.evaluate("ml", release, NOW)[0].status is GateStatus.FAILED
    assert server.hits["/a"] == 1
    clock.now += 31
    assert gates.evaluate("ml", release, NOW)[0].status is GateStatus.PASSED
    assert server.hits["/a"] == 2


def test_unchanged_verdict_keeps_its_checked_at(server: Server) -> None:
    url = server.serve("/a", Route(b"A"))
    gates = evaluator()
    first = gates.evaluate("ml", spec(url, sha(b"A")), NOW)
    later = gates.evaluate("ml", spec(url, sha(b"A")), NOW + timedelta(minutes=5))
    assert [r.checked_at for r in later] == [NOW, NOW]
    assert first == later


def test_concurrent_evaluations_download_once(server: Server) -> None:
    url = server.serve("/slow", Route(b"S" * 4096, trickle=0.01))
    gates = evaluator()
    results: list[GateStatus] = []

    def run() -> None:
        results.append(gates.evaluate("ml", spec(url, sha(b"S" * 4096)), NOW)[0].status)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [GateStatus.PASSED] * 4
    assert server.hits["/slow"] == 1


def sbom_doc(*severities: str) -> bytes:
    vulns = [
        {"id": f"CVE-2026-{n}", "ratings": [{"severity": s}], "affects": [{"ref": "lib"}]}
        for n, s in enumerate(severities)
    ]
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [{"type": "library", "bom-ref": "lib", "name": "lib", "version": "1"}],
        "vulnerabilities": vulns,
    }
    return json.dumps(doc).encode()


def sbom_result(gates: GateEvaluator, server: Server, path: str, **sbom: Any) -> Any:
    release = spec(
        server.serve("/a", Route(b"A")),
        sha(b"A"),
        gates={"sbom": {"url": server.url + path, **sbom}},
    )
    return by_name(gates.evaluate("ml", release, NOW))[GATE_SBOM]


def test_sbom_url_verdicts(server: Server) -> None:
    server.serve("/clean.json", Route(sbom_doc("low")))
    server.serve("/vuln.json", Route(sbom_doc("critical", "medium")))
    server.serve("/junk.json", Route(b"<html>login</html>"))
    gates = evaluator()
    clean = sbom_result(gates, server, "/clean.json")
    assert clean.status is GateStatus.PASSED
    assert clean.message.endswith("1 components, no vulnerability at or above high; 1 below high")
    vuln = sbom_result(gates, server, "/vuln.json")
    assert vuln.status is GateStatus.FAILED
    assert "1 vulnerability at or above high: CVE-2026-0 (critical; lib@1)" in vuln.message
    assert sbom_result(gates, server, "/vuln.json", maxSeverity="medium").message.count("CVE") == 2
    junk = sbom_result(gates, server, "/junk.json")
    assert junk.status is GateStatus.FAILED
    assert "no evidence, no promotion" in junk.message


def test_sbom_url_bounds_and_errors(server: Server) -> None:
    server.serve("/huge.json", Route(b" " * 4096 + sbom_doc()))
    server.serve("/slow.json", Route(sbom_doc(), delay=3.0))
    gates = evaluator(max_sbom_bytes=1024, sbom_timeout=0.5)
    huge = sbom_result(gates, server, "/huge.json")
    assert huge.status is GateStatus.FAILED
    assert "larger than the limit" in huge.message
    slow = sbom_result(gates, server, "/slow.json")
    assert slow.status is GateStatus.PENDING
    assert "no answer within 0.5s" in slow.message
    missing = sbom_result(gates, server, "/missing.json")
    assert missing.status is GateStatus.PENDING
    assert "HTTP 404" in missing.message
    other = evaluator().evaluate(
        "ml", spec(server.url + "/a", sha(b"A"), gates={"sbom": {"url": "s3://b/sbom.json"}}), NOW
    )
    assert by_name(other)[GATE_SBOM].status is GateStatus.PENDING


def test_sbom_url_failure_is_rechecked_after_the_ttl(server: Server) -> None:
    server.serve("/s.json", Route(sbom_doc("high")))
    clock = FakeClock()
    gates = evaluator(clock, retry_ttl=60)
    assert sbom_result(gates, server, "/s.json").status is GateStatus.FAILED
    server.routes["/s.json"] = Route(sbom_doc())
    assert sbom_result(gates, server, "/s.json").status is GateStatus.FAILED
    clock.now += 61
    assert sbom_result(gates, server, "/s.json").status is GateStatus.PASSED
    clock.now += 10_000
    assert sbom_result(gates, server, "/s.json").status is GateStatus.PASSED
    assert server.hits["/s.json"] == 2


def test_policy_and_freeze_pending_when_the_api_is_unreachable(server: Server) -> None:
    gates = evaluator(policy_configmap=("ops", "policy"), freeze_configmap=("ops", "freeze"))
    results = by_name(
        gates.evaluate(
            "ml", spec(server.serve("/a", Route(b"A")), sha(b"A"), policyDigest=sha(b"p")), NOW
        )
    )
    assert results[GATE_POLICY].status is GateStatus.PENDING
    assert "could not check" in results[GATE_POLICY].message
    assert results[GATE_FREEZE].status is GateStatus.PENDING
    assert "could not read the freeze ConfigMap ops/freeze" in results[GATE_FREEZE].message


def test_policy_digest_without_configured_snapshot_is_pending(server: Server) -> None:
    results = by_name(
        evaluator().evaluate(
            "ml", spec(server.serve("/a", Route(b"A")), sha(b"A"), policyDigest=sha(b"p")), NOW
        )
    )
    assert results[GATE_POLICY].status is GateStatus.PENDING
    assert "ROLLWISE_POLICY_CONFIGMAP" in results[GATE_POLICY].message


def test_spec_freeze_windows(server: Server) -> None:
    windows = [
        {
            "name": "weekday-hours",
            "schedule": "0 9 * * MON-FRI",
            "duration": "8h",
            "timeZone": "Europe/Berlin",
        },
        {"name": "year-end", "start": "2026-12-20T00:00:00Z", "end": "2027-01-04T00:00:00Z"},
    ]
    release = spec(server.serve("/a", Route(b"A")), sha(b"A"), gates={"freezeWindows": windows})
    gates = evaluator()
    # Sunday 22 November: no window open.
    assert by_name(gates.evaluate("ml", release, NOW))[GATE_FREEZE].message == (
        "no freeze window open (2 checked)"
    )
    # Monday 23 November 10:00 Berlin (09:00Z).
    monday = by_name(gates.evaluate("ml", release, datetime(2026, 11, 23, 9, tzinfo=UTC)))
    assert monday[GATE_FREEZE].status is GateStatus.FAILED
    assert monday[GATE_FREEZE].message == (
        "freeze window weekday-hours is open until 2026-11-23T16:00:00Z"
    )
    # The release looks again when the window closes.
    assert monday[GATE_FREEZE].recheck_at == datetime(2026, 11, 23, 16, tzinfo=UTC)
    # Tuesday 22 December, both open: the one ending last is named first.
    both = by_name(gates.evaluate("ml", release, datetime(2026, 12, 22, 9, tzinfo=UTC)))
    assert both[GATE_FREEZE].message == (
        "freeze window year-end is open until 2027-01-04T00:00:00Z; "
        "also open: weekday-hours until 2026-12-22T16:00:00Z"
    )
    assert both[GATE_FREEZE].recheck_at == datetime(2027, 1, 4, tzinfo=UTC)


def test_broken_spec_window_fails_the_gate(server: Server) -> None:
    windows = [{"name": "typo", "schedule": "0 9 * * MON-FRY", "duration": "8h"}]
    release = spec(server.serve("/a", Route(b"A")), sha(b"A"), gates={"freezeWindows": windows})
    result = by_name(evaluator().evaluate("ml", release, NOW))[GATE_FREEZE]
    assert result.status is GateStatus.FAILED
    assert result.message == (
        "invalid freeze window definitions: freeze window typo: cron schedule "
        "'0 9 * * MON-FRY': day-of-week field 'MON-FRY' is not valid"
    )


def test_sbom_with_both_sources_fails(server: Server) -> None:
    release = spec(
        server.serve("/a", Route(b"A")),
        sha(b"A"),
        gates={"sbom": {"url": "http://x", "configMapKeyRef": {"name": "s", "key": "k"}}},
    )
    result = by_name(evaluator().evaluate("ml", release, NOW))[GATE_SBOM]
    assert result.status is GateStatus.FAILED
    assert "exactly one of configMapKeyRef or url" in result.message


def test_an_unexpected_error_is_pending_never_raised() -> None:
    # urlsplit refuses this URI with a ValueError deep inside the artifact check.
    results = evaluator().evaluate("ml", spec("http://[::1/model", sha(b"A")), NOW)
    artifact = by_name(results)[GATE_ARTIFACT]
    assert artifact.status is GateStatus.PENDING
    assert artifact.message.startswith("could not check: ValueError: ")
    assert by_name(results)[GATE_FREEZE].status is GateStatus.PASSED


# ------------------------------------------------------------------- the evidence policy

#: What an internal page could hold.
SECRET = b"<html>internal admin page: db-password=hunter2</html>"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "host 169.254.169.254 is not in the operator's evidence policy (allowedHosts)",
            id="cloud-metadata",
        ),
        pytest.param(
            "http://localhost:{port}/a",
            "host localhost is not in the operator's evidence policy",
            id="another-name",
        ),
        pytest.param(
            "https://127.0.0.1:{port}/a",
            "scheme https:// is not allowed by the operator's evidence policy (allowed: http://)",
            id="scheme",
        ),
        pytest.param(
            "http://user:pw@127.0.0.1:{port}/a", "URLs with credentials are not allowed", id="creds"
        ),
    ],
)
def test_evidence_the_policy_does_not_allow_is_never_fetched(
    server: Server, url: str, message: str
) -> None:
    server.serve("/a", Route(b"A"))
    target = url.format(port=server.httpd.server_address[1])
    artifact = checker().check(target, sha(b"A"))
    assert artifact.status is GateStatus.FAILED
    assert message in artifact.message
    sbom = by_name(
        evaluator().evaluate(
            "ml", spec(server.url + "/a", sha(b"A"), gates={"sbom": {"url": target}}), NOW
        )
    )[GATE_SBOM]
    assert sbom.status is GateStatus.FAILED
    assert message in sbom.message
    assert server.hits == {"/a": 1}, "only the allowed artifact of the SBOM release was read"


def test_a_redirect_is_followed_only_to_an_allowed_host(server: Server) -> None:
    other = f"http://localhost:{server.httpd.server_address[1]}/a"
    server.serve("/a", Route(b"A"))
    server.serve("/away", Route(b"", status=302, headers={"Location": other}))
    server.serve("/here", Route(b"", status=307, headers={"Location": "/a"}))
    away = checker().check(server.url + "/away", sha(b"A"))
    assert away.status is GateStatus.FAILED
    assert "a redirect: host localhost is not in the operator's evidence policy" in away.message
    assert "/a" not in server.hits, "the redirect was not followed"
    here = checker().check(server.url + "/here", sha(b"A"))
    assert here.status is GateStatus.PASSED
    assert server.hits["/a"] == 1


def test_no_answer_text_reaches_a_gate_message(server: Server) -> None:
    server.serve("/page", Route(SECRET, status=500, reason="db-password=hunter2"))
    server.serve("/sbom.json", Route(SECRET, status=403))
    artifact = checker().check(server.url + "/page", sha(b"A"))
    assert artifact.status is GateStatus.PENDING
    assert artifact.message.endswith("HTTP 500 Internal Server Error")
    sbom = sbom_result(evaluator(), server, "/sbom.json")
    assert "HTTP 403 Forbidden" in sbom.message
    assert "hunter2" not in artifact.message + sbom.message


def test_gates_the_cluster_policy_requires_fail_when_the_spec_leaves_them_out(
    server: Server,
) -> None:
    release = spec(server.serve("/a", Route(b"A")), sha(b"A"))
    results = evaluator().evaluate("ml", release, NOW, (GATE_SBOM, GATE_POLICY))
    assert [r.name for r in results] == [GATE_ARTIFACT, GATE_SBOM, GATE_POLICY, GATE_FREEZE]
    found = by_name(results)
    assert found[GATE_SBOM].status is GateStatus.FAILED
    assert "the cluster policy requires the sbom gate" in found[GATE_SBOM].message
    assert "set spec.gates.sbom" in found[GATE_SBOM].message
    assert found[GATE_POLICY].status is GateStatus.FAILED
    assert "set spec.policyDigest" in found[GATE_POLICY].message
