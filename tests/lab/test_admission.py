"""WebhookAdmission against real webhook servers on loopback (HTTP and HTTPS).

The webhook configurations and namespaces come from plain functions returning stored objects,
as the API server's store hands them over; the webhooks are real aiohttp servers answering
AdmissionReviews, so requests, TLS, timeouts and failures are the real ones.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from hack.lab.kube.admission import (
    ADMISSION_WARNINGS,
    WebhookAdmission,
    ca_bundle,
    load_admission_config,
    write_admission_client_auth,
    write_webhook_certificate,
)
from hack.lab.kube.contracts import AdmissionAttributes, AdmissionDenied, UserInfo

pytestmark = pytest.mark.lab

ALICE = UserInfo(username="alice", uid="uid-alice", groups=("security", "system:authenticated"))

Behaviour = Callable[[dict[str, Any]], Awaitable[Any]]


def attrs(**overrides: Any) -> AdmissionAttributes:
    values: dict[str, Any] = {
        "operation": "CREATE",
        "group": "lab.rollwise.dev",
        "version": "v1",
        "resource": "widgets",
        "subresource": "",
        "kind": "Widget",
        "namespace": "team-a",
        "name": "w1",
        "user": ALICE,
    }
    values.update(overrides)
    return AdmissionAttributes(**values)


def widget(name: str = "w1", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lab.rollwise.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "team-a", "labels": labels or {}},
        "spec": spec,
    }


def answer(review: dict[str, Any], allowed: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": review["apiVersion"],
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": allowed, **extra},
    }


def json_patch(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(ops).encode()).decode()}


class Webhooks:
    """A real webhook server: each path answers with a behaviour; every review is recorded."""

    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self.url = ""

    def on(self, path: str, behaviour: Behaviour) -> str:
        self.behaviours[path] = behaviour
        return f"{self.url}/{path}"

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [review for p, review in self.reviews if p == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        review = await request.json()
        self.reviews.append((path, review))
        result = await self.behaviours[path](review)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)


@asynccontextmanager
async def webhook_server(
    cert: tuple[Path, Path] | None = None, client_ca: Path | None = None
) -> AsyncIterator[Webhooks]:
    """A webhook server; with ``client_ca`` it answers only callers presenting a client
    certificate that CA signed."""
    import ssl  # noqa: PLC0415

    hooks = Webhooks()
    app = web.Application()
    app.router.add_post("/{path}", hooks.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    context = None
    if cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(client_ca))
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hooks.url = f"{'https' if cert else 'http'}://127.0.0.1:{port}"
    try:
        yield hooks
    finally:
        await runner.cleanup()


def hook(name: str, url: str, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "clientConfig": {"url": url},
        "rules": [
            {
                "operations": ["*"],
                "apiGroups": ["lab.rollwise.dev"],
                "apiVersions": ["v1"],
                "resources": ["widgets"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5,
    }
    spec.update(fields)
    return spec


def config(name: str, *webhooks: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "webhooks": list(webhooks)}


class Store:
    """The two callables the API server's store provides: plain data in, plain data out."""

    def __init__(self) -> None:
        self.mutating: list[dict[str, Any]] = []
        self.validating: list[dict[str, Any]] = []
        self.namespaces: dict[str, dict[str, Any]] = {}

    def list_configs(self, kind: str) -> list[dict[str, Any]]:
        return self.mutating if kind == "mutating" else self.validating

    def get_namespace(self, name: str) -> dict[str, Any] | None:
        return self.namespaces.get(name)

    def admission(self, **kwargs: Any) -> WebhookAdmission:
        return WebhookAdmission(self.list_configs, self.get_namespace, **kwargs)


async def allow(review: dict[str, Any]) -> dict[str, Any]:
    return answer(review)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=20))  # type: ignore[arg-type]


def test_allowed_request_carries_the_review_kube_apiserver_sends() -> None:
    async def scenario() -> None:
        store = Store()
        async with webhook_server() as hooks:
            store.validating.append(config("v", hook("check.lab", hooks.on("check", allow))))
            obj = widget(labels={"app": "x"}, size=3)
            await store.admission().validate(attrs(), obj, None)
            [review] = hooks.calls("check")
        assert review["apiVersion"] == "admission.k8s.io/v1"
        assert review["kind"] == "AdmissionReview"
        request = review["request"]
        assert request["uid"]
        assert request["kind"] == {"group": "lab.rollwise.dev", "version": "v1", "kind": "Widget"}
        assert request["resource"] == {
            "group": "lab.rollwise.dev",
            "version": "v1",
            "resource": "widgets",
        }
        assert request["requestResource"] == request["resource"]
        assert "subResource" not in request
        assert (request["name"], request["namespace"]) == ("w1", "team-a")
        assert request["operation"] == "CREATE"
        assert request["userInfo"] == {
            "username": "alice",
            "uid": "uid-alice",
            "groups": ["security", "system:authenticated"],
        }
        assert request["object"] == obj
        assert request["oldObject"] is None
        assert request["dryRun"] is False
        assert request["options"] == {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}

    run(scenario())


def test_delete_sends_old_object_and_delete_options() -> None:
    async def scenario() -> None:
        store = Store()
        async with webhook_server() as hooks:
            store.validating.append(config("v", hook("check.lab", hooks.on("check", allow))))
            old = widget()
            await store.admission().validate(attrs(operation="DELETE"), None, old)
            [review] = hooks.calls("check")
        assert review["request"]["object"] is None
        assert review["request"]["oldObject"] == old
        assert review["request"]["options"]["kind"] == "DeleteOptions"

    run(scenario())


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        pytest.param(
            {"message": "size must be small", "code": 422},
            'admission webhook "deny.lab" denied the request: size must be small',
            422,
            id="message-and-code",
        ),
        pytest.param(
            {"message": "no"},
            'admission webhook "deny.lab" denied the request: no',
            400,
            id="code-defaults-to-400",
        ),
        pytest.param(
            {"reason": "Forbidden", "code": 403},
            'admission webhook "deny.lab" denied the request: Forbidden',
            403,
            id="reason-when-no-message",
        ),
        pytest.param(
            {"code": 200},
            'admission webhook "deny.lab" denied the request without explanation',
            400,
            id="no-explanation-and-success-code-raised-to-400",
        ),
    ],
)
def test_refusal_uses_kube_apiserver_wording(
    status: dict[str, Any], message: str, code: int
) -> None:
    async def deny(review: dict[str, Any]) -> dict[str, Any]:
        return answer(review, allowed=False, status=status)

    async def scenario() -> AdmissionDenied:
        store = Store()
        async with webhook_server() as hooks:
            store.validating.append(config("v", hook("deny.lab", hooks.on("deny", deny))))
            with pytest.raises(AdmissionDenied) as info:
                await store.admission().validate(attrs(), widget(), None)
        return info.value

    denied = run(scenario())
    assert denied.message == message
    assert denied.code == code


def test_mutating_webhooks_run_in_configuration_name_order_and_patches_apply() -> None:
    async def add_label(key: str) -> Behaviour:
        async def behaviour(review: dict[str, Any]) -> dict[str, Any]:
            ops = [{"op": "add", "path": f"/metadata/labels/{key}", "value": "yes"}]
            return answer(review, **json_patch(ops))

        return behaviour

    async def scenario() -> None:
        store = Store()
        async with webhook_server() as hooks:
            first = hooks.on("first", await add_label("first"))
            second = hooks.on("second", await add_label("second"))
            store.mutating.append(config("b-config", hook("second.lab", second)))
            store.mutating.append(config("a-config", hook("first.lab", first)))
            original = widget()
            result = await store.admission().mutate(attrs(), original, None)
            order = [path for path, _ in hooks.reviews]
            second_saw = hooks.calls("second")[0]["request"]["object"]
        assert order == ["first", "second"]
        assert second_saw["metadata"]["labels"] == {"first": "yes"}
        assert result["metadata"]["labels"] == {"first": "yes", "second": "yes"}
        assert original["metadata"]["labels"] == {}, "the caller's object is not changed"

    run(scenario())


def test_reinvocation_if_needed_sees_later_changes() -> None:
    async def scenario() -> None:
        store = Store()
        async with webhook_server() as hooks:

            async def early(review: dict[str, Any]) -> dict[str, Any]:
                return answer(review)

            async def late(review: dict[str, Any]) -> dict[str, Any]:
                if review["request"]["object"]["spec"].get("late"):
                    return answer(review)
                return answer(
                    review, **json_patch([{"op": "add", "path": "/spec/late", "value": True}])
                )

            store.mutating.append(
                config(
                    "m",
                    hook("early.lab", hooks.on("early", early), reinvocationPolicy="IfNeeded"),
                    hook("late.lab", hooks.on("late", late)),
                )
            )
            await store.admission().mutate(attrs(), widget(), None)
            early_calls = hooks.calls("early")
        assert len(early_calls) == 2
        assert early_calls[1]["request"]["object"]["spec"] == {"late": True}

    run(scenario())


def test_validating_webhooks_are_called_in_parallel() -> None:
    async def scenario() -> None:
        store = Store()
        b_called = asyncio.Event()

        async def a(review: dict[str, Any]) -> dict[str, Any]:
            # Only answers once b is in flight too: sequential calls would time out here.
            await asyncio.wait_for(b_called.wait(), timeout=3)
            return answer(review)

        async def b(review: dict[str, Any]) -> dict[str, Any]:
            b_called.set()
            return answer(review)

        async with webhook_server() as hooks:
            store.validating.append(
                config("v", hook("a.lab", hooks.on("a", a)), hook("b.lab", hooks.on("b", b)))
            )
            await store.admission().validate(attrs(), widget(), None)
            assert len(hooks.reviews) == 2

    run(scenario())


async def _closed_port_url() -> str:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return f"http://127.0.0.1:{port}/gone"


@pytest.mark.parametrize(
    ("policy", "denied"),
    [
        pytest.param("Fail", True, id="fail-closed"),
        pytest.param(None, True, id="default-is-fail"),
        pytest.param("Ignore", False, id="ignore"),
    ],
)
def test_unreachable_webhook_follows_failure_policy(policy: str | None, denied: bool) -> None:
    async def scenario() -> AdmissionDenied | None:
        store = Store()
        fields = {"failurePolicy": policy} if policy else {}
        store.validating.append(config("v", hook("gone.lab", await _closed_port_url(), **fields)))
        try:
            await store.admission().validate(attrs(), widget(), None)
        except AdmissionDenied as exc:
            return exc
        return None

    result = run(scenario())
    if denied:
        assert result is not None
        assert result.code == 500
        assert result.reason == "InternalError"
        assert 'failed calling webhook "gone.lab"' in result.message
    else:
        assert result is None


async def _slow(review: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(1.5)
    return answer(review)


async def _wrong_uid(review: dict[str, Any]) -> dict[str, Any]:
    body = answer(review)
    body["response"]["uid"] = "not-the-request"
    return body


async def _server_error(review: dict[str, Any]) -> web.Response:
    return web.Response(status=503, text="overloaded")


async def _not_json(review: dict[str, Any]) -> web.Response:
    return web.Response(text="hello")


async def _bad_patch(review: dict[str, Any]) -> dict[str, Any]:
    return answer(review, **json_patch([{"op": "remove", "path": "/spec/missing"}]))


@pytest.mark.parametrize(
    ("behaviour", "extra", "expected"),
    [
        pytest.param(_slow, {"timeoutSeconds": 1}, "deadline exceeded", id="timeout"),
        pytest.param(_wrong_uid, {}, 'expected response.uid="', id="wrong-uid"),
        pytest.param(_server_error, {}, "503", id="http-error"),
        pytest.param(_not_json, {}, "not JSON", id="not-json"),
        pytest.param(_bad_patch, {}, "patch cannot be applied", id="bad-patch"),
    ],
)
def test_bad_webhook_answers_are_failures(
    behaviour: Behaviour, extra: dict[str, Any], expected: str
) -> None:
    async def scenario() -> AdmissionDenied:
        store = Store()
        async with webhook_server() as hooks:
            store.mutating.append(config("m", hook("odd.lab", hooks.on("odd", behaviour), **extra)))
            with pytest.raises(AdmissionDenied) as info:
                await store.admission().mutate(attrs(), widget(), None)
        return info.value

    denied = run(scenario())
    assert denied.code == 500
    assert denied.message.startswith('Internal error occurred: failed calling webhook "odd.lab": ')
    assert expected in denied.message


def test_https_webhook_is_verified_against_ca_bundle(tmp_path: Path) -> None:
    cert = write_webhook_certificate(tmp_path)
    other = write_webhook_certificate(tmp_path / "other")

    async def scenario() -> tuple[int, AdmissionDenied | None, AdmissionDenied | None]:
        async with webhook_server(cert) as hooks:
            url = hooks.on("check", allow)
            trusted = Store()
            trusted.validating.append(
                config(
                    "v",
                    hook("tls.lab", url, clientConfig={"url": url, "caBundle": ca_bundle(cert[0])}),
                )
            )
            await trusted.admission().validate(attrs(), widget(), None)
            results: list[AdmissionDenied | None] = []
            for bundle in (ca_bundle(other[0]), None):
                store = Store()
                client: dict[str, Any] = {"url": url}
                if bundle:
                    client["caBundle"] = bundle
                store.validating.append(config("v", hook("tls.lab", url, clientConfig=client)))
                try:
                    await store.admission().validate(attrs(), widget(), None)
                    results.append(None)
                except AdmissionDenied as exc:
                    results.append(exc)
            return len(hooks.reviews), results[0], results[1]

    calls, wrong_ca, no_ca = run(scenario())
    assert calls == 1, "only the call with the right CA bundle reached the webhook"
    for denied in (wrong_ca, no_ca):
        assert denied is not None
        assert denied.code == 500
        assert "certificate verify failed" in denied.message


def test_the_admission_configuration_presents_a_client_certificate(tmp_path: Path) -> None:
    """As kube-apiserver with --admission-control-config-file: a webhook that authenticates its
    caller by client certificate is answered only when the configuration presents one its CA
    signed."""
    cert = write_webhook_certificate(tmp_path / "serving")
    client = write_admission_client_auth(tmp_path / "client")
    stranger = write_admission_client_auth(tmp_path / "stranger")

    async def scenario() -> tuple[int, list[AdmissionDenied | None]]:
        async with webhook_server(cert, client_ca=client.ca) as hooks:
            url = hooks.on("check", allow)
            results: list[AdmissionDenied | None] = []
            for credentials in (load_admission_config(client.config), None):
                store = Store()
                store.validating.append(
                    config(
                        "v",
                        hook(
                            "tls.lab",
                            url,
                            clientConfig={"url": url, "caBundle": ca_bundle(cert[0])},
                        ),
                    )
                )
                try:
                    await store.admission(client_credentials=credentials).validate(
                        attrs(), widget(), None
                    )
                    results.append(None)
                except AdmissionDenied as exc:
                    results.append(exc)
            # Another CA's certificate is no better than none.
            wrong = Store()
            wrong.validating.append(
                config(
                    "v",
                    hook("tls.lab", url, clientConfig={"url": url, "caBundle": ca_bundle(cert[0])}),
                )
            )
            try:
                await wrong.admission(
                    client_credentials=load_admission_config(stranger.config)
                ).validate(attrs(), widget(), None)
                results.append(None)
            except AdmissionDenied as exc:
                results.append(exc)
            return len(hooks.reviews), results

    calls, (presented, absent, foreign) = run(scenario())
    assert calls == 1, "only the call with the right client certificate reached the webhook"
    assert presented is None
    for denied in (absent, foreign):
        assert denied is not None
        assert denied.code == 500


@pytest.mark.parametrize(
    ("users", "host", "port", "chosen"),
    [
        pytest.param(["*"], "127.0.0.1", 9443, "*", id="default-user"),
        pytest.param(["127.0.0.1:9443", "*"], "127.0.0.1", 9443, "127.0.0.1:9443", id="host-port"),
        pytest.param(
            ["*.rollwise-system.svc", "*"],
            "rollwise-webhook.rollwise-system.svc",
            443,
            "*.rollwise-system.svc",
            id="wildcard-service",
        ),
        pytest.param(
            ["*.rollwise-system.svc:9443"],
            "rollwise-webhook.rollwise-system.svc",
            9443,
            "*.rollwise-system.svc:9443",
            id="wildcard-with-port",
        ),
        pytest.param(["other.svc"], "rollwise-webhook.rollwise-system.svc", 443, None, id="none"),
    ],
)
def test_admission_kubeconfig_users_are_matched_as_kube_apiserver_does(
    tmp_path: Path, users: list[str], host: str, port: int, chosen: str | None
) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {"name": name, "user": {"client-certificate": f"{i}.crt", "client-key": "k"}}
                    for i, name in enumerate(users)
                ]
            }
        )
    )
    admission = tmp_path / "admission.yaml"
    admission.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "AdmissionConfiguration",
                "plugins": [
                    {
                        "name": "ValidatingAdmissionWebhook",
                        "configuration": {"kubeConfigFile": kubeconfig.name},
                    }
                ],
            }
        )
    )
    found = load_admission_config(admission)(host, port)
    expected = None if chosen is None else str(tmp_path / f"{users.index(chosen)}.crt")
    assert (found[0] if found else None) == expected


@pytest.mark.parametrize(
    ("labels", "old_labels", "called"),
    [
        pytest.param({"tier": "gold"}, None, True, id="new-object-matches"),
        pytest.param({"tier": "bronze"}, None, False, id="new-object-differs"),
        pytest.param({}, {"tier": "gold"}, True, id="old-object-matches"),
    ],
)
def test_object_selector(
    labels: dict[str, str], old_labels: dict[str, str] | None, called: bool
) -> None:
    async def scenario() -> int:
        store = Store()
        async with webhook_server() as hooks:
            selector = {"matchLabels": {"tier": "gold"}}
            store.validating.append(
                config("v", hook("sel.lab", hooks.on("sel", allow), objectSelector=selector))
            )
            old = widget(labels=old_labels) if old_labels is not None else None
            operation = "UPDATE" if old else "CREATE"
            await store.admission().validate(attrs(operation=operation), widget(labels=labels), old)
            return len(hooks.reviews)

    assert run(scenario()) == (1 if called else 0)


@pytest.mark.parametrize(
    ("request_attrs", "called"),
    [
        pytest.param({"namespace": "prod"}, True, id="namespace-labels-match"),
        pytest.param({"namespace": "dev"}, False, id="namespace-labels-differ"),
        pytest.param({"namespace": "unknown"}, False, id="missing-namespace-has-no-labels"),
        pytest.param({"namespace": None}, True, id="cluster-scoped-object-always-matches"),
        pytest.param(
            {
                "group": "",
                "resource": "namespaces",
                "kind": "Namespace",
                "namespace": None,
                "name": "prod",
                "operation": "DELETE",
            },
            True,
            id="namespace-delete-uses-stored-labels",
        ),
    ],
)
def test_namespace_selector(request_attrs: dict[str, Any], called: bool) -> None:
    async def scenario() -> int:
        store = Store()
        store.namespaces["prod"] = {"metadata": {"name": "prod", "labels": {"env": "prod"}}}
        store.namespaces["dev"] = {"metadata": {"name": "dev", "labels": {"env": "dev"}}}
        async with webhook_server() as hooks:
            selector = {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
            rules = [
                {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}
            ]
            store.validating.append(
                config(
                    "v",
                    hook("ns.lab", hooks.on("ns", allow), namespaceSelector=selector, rules=rules),
                )
            )
            request = attrs(**request_attrs)
            obj = None if request.operation == "DELETE" else widget()
            old = store.namespaces["prod"] if request.operation == "DELETE" else None
            await store.admission().validate(request, obj, old)
            return len(hooks.reviews)

    assert run(scenario()) == (1 if called else 0)


@pytest.mark.parametrize(
    ("expression", "outcome"),
    [
        pytest.param("request.userInfo.username == 'alice'", "called", id="true-calls"),
        pytest.param("object.spec.size > 5", "skipped", id="false-skips"),
        pytest.param("object.spec.missing == 1", "failed", id="error-applies-failure-policy"),
    ],
)
def test_match_conditions(expression: str, outcome: str) -> None:
    async def scenario() -> str:
        store = Store()
        async with webhook_server() as hooks:
            conditions = [{"name": "c", "expression": expression}]
            store.validating.append(
                config("v", hook("cel.lab", hooks.on("cel", allow), matchConditions=conditions))
            )
            try:
                await store.admission().validate(attrs(), widget(size=3), None)
            except AdmissionDenied as exc:
                return "failed: " + exc.message
            return "called" if hooks.reviews else "skipped"

    result = run(scenario())
    assert result.split(":")[0] == outcome
    if outcome == "failed":
        assert "matchConditions evaluation failed" in result


def test_webhook_configurations_are_never_sent_to_webhooks() -> None:
    async def scenario() -> int:
        store = Store()
        async with webhook_server() as hooks:
            everything = [
                {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}
            ]
            store.validating.append(
                config("v", hook("all.lab", hooks.on("all", allow), rules=everything))
            )
            store.mutating.append(
                config("m", hook("all.lab", hooks.on("all", allow), rules=everything))
            )
            for resource in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
                request = attrs(
                    group="admissionregistration.k8s.io", resource=resource, namespace=None
                )
                await store.admission().mutate(request, {"metadata": {"name": "x"}}, None)
                await store.admission().validate(request, {"metadata": {"name": "x"}}, None)
            await store.admission().validate(attrs(), widget(), None)
            return len(hooks.reviews)

    assert run(scenario()) == 1, "only the widget was sent"


def test_warnings_are_collected_when_the_server_asks() -> None:
    async def warn(review: dict[str, Any]) -> dict[str, Any]:
        return answer(review, warnings=["size is deprecated"])

    async def scenario() -> list[str]:
        store = Store()
        async with webhook_server() as hooks:
            store.validating.append(config("v", hook("warn.lab", hooks.on("warn", warn))))
            collected: list[str] = []
            token = ADMISSION_WARNINGS.set(collected)
            try:
                await store.admission().validate(attrs(), widget(), None)
            finally:
                ADMISSION_WARNINGS.reset(token)
            return collected

    assert run(scenario()) == ["size is deprecated"]


@pytest.mark.parametrize(
    ("side_effects", "outcome"),
    [
        pytest.param("None", "called dryRun=True", id="no-side-effects"),
        pytest.param("NoneOnDryRun", "called dryRun=True", id="none-on-dry-run"),
        pytest.param(
            "Unknown",
            'refused 400: admission webhook "dry.lab" does not support dry run',
            id="unknown-side-effects",
        ),
    ],
)
def test_dry_run(side_effects: str, outcome: str) -> None:
    async def scenario() -> str:
        store = Store()
        async with webhook_server() as hooks:
            url = hooks.on("dry", allow)
            store.validating.append(config("v", hook("dry.lab", url, sideEffects=side_effects)))
            try:
                await store.admission().validate(attrs(dry_run=True), widget(), None)
            except AdmissionDenied as exc:
                return f"refused {exc.code}: {exc.message}"
            [review] = hooks.calls("dry")
            return f"called dryRun={review['request']['dryRun']}"

    assert run(scenario()) == outcome


def test_v1beta1_only_webhook_gets_a_v1beta1_review() -> None:
    async def scenario() -> str:
        store = Store()
        async with webhook_server() as hooks:
            url = hooks.on("old", allow)
            store.validating.append(
                config("v", hook("old.lab", url, admissionReviewVersions=["v1beta1"]))
            )
            await store.admission().validate(attrs(), widget(), None)
            return str(hooks.reviews[0][1]["apiVersion"])

    assert run(scenario()) == "admission.k8s.io/v1beta1"


def test_service_reference_needs_a_resolver() -> None:
    async def scenario() -> tuple[str, int]:
        async with webhook_server() as hooks:
            hooks.on("svc", allow)
            service = {"namespace": "ops", "name": "hooks", "port": 8443, "path": "/svc"}
            spec = hook("svc.lab", "", clientConfig={"service": service})
            unresolved = Store()
            unresolved.validating.append(config("v", spec))
            with pytest.raises(AdmissionDenied) as info:
                await unresolved.admission().validate(attrs(), widget(), None)
            seen: list[tuple[str, str, int]] = []

            def resolve(namespace: str, name: str, port: int) -> str:
                seen.append((namespace, name, port))
                return hooks.url

            resolved = Store()
            resolved.validating.append(config("v", spec))
            await resolved.admission(resolve_service=resolve).validate(attrs(), widget(), None)
            assert seen == [("ops", "hooks", 8443)]
            return info.value.message, len(hooks.calls("svc"))

    message, calls = run(scenario())
    assert "clientConfig.service cannot be resolved" in message
    assert calls == 1
