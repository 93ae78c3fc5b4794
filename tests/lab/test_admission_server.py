"""Admission webhooks through the lab's API server, driven with kubectl as given users.

A real webhook server runs on loopback in a thread; the webhook configurations are applied
with kubectl like any other object. These tests check what only the whole request path shows:
the order mutate, defaults and schema validation, validate; subresources and deletes reaching
webhooks; the failure policy as kubectl reports it; and that webhook configurations stay
writable when a webhook is down.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hack.lab.kube.auth import Identities, write_identities
from hack.lab.kube.server import BackgroundAPIServer
from hack.lab.testing.kube_fixtures import WIDGET_CRD, Kubectl, make_kubectl, manifest

pytestmark = pytest.mark.lab

Behaviour = Callable[[dict[str, Any]], dict[str, Any]]


class WebhookThread:
    """Webhook endpoints on 127.0.0.1 served from a thread; every review is recorded."""

    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def on(self, path: str, behaviour: Behaviour) -> str:
        self.behaviours[path] = behaviour
        return f"{self.url}/{path}"

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [review["request"] for p, review in list(self.reviews) if p == path]

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        review = await request.json()
        self.reviews.append((path, review))
        return web.json_response(self.behaviours[path](review))

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> WebhookThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def answer(review: dict[str, Any], allowed: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": review["apiVersion"],
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": allowed, **extra},
    }


def allow(review: dict[str, Any]) -> dict[str, Any]:
    return answer(review)


def webhook_config(kind: str, config_name: str, **webhook: Any) -> dict[str, Any]:
    spec = {"sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5}
    spec.update(webhook)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": f"{kind}WebhookConfiguration",
        "metadata": {"name": config_name},
        "webhooks": [spec],
    }


def widget_rule(operations: list[str], resources: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "operations": operations,
            "apiGroups": ["lab.rollwise.dev"],
            "apiVersions": ["v1"],
            "resources": resources,
        }
    ]


class Lab:
    def __init__(self, identities: Identities, hooks: WebhookThread, cache: Path) -> None:
        self.identities = identities
        self.hooks = hooks
        self.cache = cache

    def kubectl(self, user: str = "admin") -> Kubectl:
        return make_kubectl(self.identities[user].kubeconfig, self.cache / user)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("admission")
    identities = write_identities(tmp, {"admin": ("system:masters",), "alice": ("security",)})
    with (
        BackgroundAPIServer(authenticator=identities.authenticator()) as server,
        WebhookThread() as hooks,
    ):
        api = server.server
        identities.write_kubeconfigs(server.url, certificate_authority_data=api.ca_pem)
        lab = Lab(identities, hooks, tmp / "cache")
        kubectl = lab.kubectl()
        kubectl("apply", "-f", "-", input=manifest(WIDGET_CRD), check=True)
        kubectl(
            "wait",
            "--for=condition=Established",
            "crd/widgets.lab.rollwise.dev",
            "--timeout=10s",
            check=True,
        )
        yield lab


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lab.rollwise.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def test_mutation_then_defaults_and_schema_then_validation(lab: Lab) -> None:
    def mutate(review: dict[str, Any]) -> dict[str, Any]:
        ops = [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
        if review["request"]["object"]["spec"].get("color") == "red":
            ops.append({"op": "replace", "path": "/spec/color", "value": "purple"})
        patch = base64.b64encode(json.dumps(ops).encode()).decode()
        return answer(review, patchType="JSONPatch", patch=patch)

    kubectl = lab.kubectl()
    rules = widget_rule(["CREATE"], ["widgets"])
    kubectl(
        "apply",
        "-f",
        "-",
        input=manifest(
            webhook_config(
                "Mutating",
                "label-widgets",
                name="label.lab.rollwise.dev",
                rules=rules,
                clientConfig={"url": lab.hooks.on("label", mutate)},
            ),
            webhook_config(
                "Validating",
                "see-widgets",
                name="see.lab.rollwise.dev",
                rules=rules,
                clientConfig={"url": lab.hooks.on("see", allow)},
            ),
        ),
        check=True,
    )
    try:
        alice = lab.kubectl("alice")
        created = alice("apply", "-f", "-", input=manifest(widget("m1", color="green")))
        stored = json.loads(kubectl("get", "widget", "m1", "-o", "json", check=True).stdout)
        invalid = alice("apply", "-f", "-", input=manifest(widget("m2", color="red")))
    finally:
        kubectl("delete", "mutatingwebhookconfiguration", "label-widgets", check=True)
        kubectl("delete", "validatingwebhookconfiguration", "see-widgets", check=True)

    assert created.returncode == 0, created.stderr
    assert stored["metadata"]["labels"] == {"mutated": "yes"}
    [seen] = [r for r in lab.hooks.calls("see") if r["name"] == "m1"]
    assert seen["object"]["metadata"]["labels"] == {"mutated": "yes"}, "validated after mutation"
    assert seen["object"]["spec"]["replicas"] == 1, "validated after schema defaults"
    assert seen["userInfo"]["username"] == "alice"
    assert "security" in seen["userInfo"]["groups"]
    assert invalid.returncode != 0, "a mutation that breaks the schema is refused"
    assert "purple" in invalid.stderr
    assert not [r for r in lab.hooks.calls("see") if r["name"] == "m2"]


def test_status_subresource_and_delete_reach_webhooks(lab: Lab) -> None:
    kubectl = lab.kubectl()
    kubectl("apply", "-f", "-", input=manifest(widget("s1", color="blue")), check=True)
    url = lab.hooks.on("audit", allow)
    kubectl(
        "apply",
        "-f",
        "-",
        input=manifest(
            webhook_config(
                "Validating",
                "audit-widgets",
                name="audit.lab.rollwise.dev",
                rules=widget_rule(["UPDATE", "DELETE"], ["widgets/status", "widgets"]),
                clientConfig={"url": url},
            )
        ),
        check=True,
    )
    try:
        status = '{"status": {"phase": "Up"}}'
        kubectl(
            "patch", "widget", "s1", "-n", "default", "--subresource=status",
            "--type=merge", "-p", status, check=True,
        )  # fmt: skip
        kubectl("delete", "widget", "s1", "-n", "default", check=True)
    finally:
        kubectl("delete", "validatingwebhookconfiguration", "audit-widgets", check=True)

    calls = [r for r in lab.hooks.calls("audit") if r["name"] == "s1"]
    assert [(r["operation"], r.get("subResource", "")) for r in calls] == [
        ("UPDATE", "status"),
        ("DELETE", ""),
    ]
    status_call, delete_call = calls
    assert status_call["kind"]["kind"] == "Widget"
    assert status_call["object"]["status"] == {"phase": "Up"}
    assert delete_call["object"] is None
    assert delete_call["oldObject"]["metadata"]["name"] == "s1"
    assert delete_call["options"]["kind"] == "DeleteOptions"


def test_webhook_down_fails_closed_and_its_configuration_stays_writable(lab: Lab) -> None:
    kubectl = lab.kubectl()
    everything = [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"],
                   "resources": ["*/*"]}]  # fmt: skip
    down = webhook_config(
        "Validating",
        "down",
        name="down.lab.rollwise.dev",
        rules=everything,
        clientConfig={"url": "http://127.0.0.1:1/nothing-listens"},
        timeoutSeconds=2,
    )
    kubectl("apply", "-f", "-", input=manifest(down), check=True)
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}}
    refused = kubectl("apply", "-n", "default", "-f", "-", input=manifest(configmap))
    removed = kubectl("delete", "validatingwebhookconfiguration", "down")
    accepted = kubectl("apply", "-n", "default", "-f", "-", input=manifest(configmap))

    assert refused.returncode != 0
    assert (
        'Internal error occurred: failed calling webhook "down.lab.rollwise.dev"' in refused.stderr
    )
    assert removed.returncode == 0, removed.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_webhook_warnings_reach_kubectl(lab: Lab) -> None:
    def warn(review: dict[str, Any]) -> dict[str, Any]:
        return answer(review, warnings=["spec.color is deprecated"])

    kubectl = lab.kubectl()
    config = webhook_config(
        "Validating",
        "warn-widgets",
        name="warn.lab.rollwise.dev",
        rules=widget_rule(["CREATE"], ["widgets"]),
        clientConfig={"url": lab.hooks.on("warn", warn)},
    )
    kubectl("apply", "-f", "-", input=manifest(config), check=True)
    try:
        created = lab.kubectl("alice")(
            "apply", "-f", "-", input=manifest(widget("w1", color="red"))
        )
    finally:
        kubectl("delete", "validatingwebhookconfiguration", "warn-widgets", check=True)
    assert created.returncode == 0, created.stderr
    assert "Warning: spec.color is deprecated" in created.stderr
