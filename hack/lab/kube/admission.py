"""Dynamic admission for the lab's API server: calling admission webhooks as kube-apiserver does.

``WebhookAdmission`` implements ``contracts.Admission`` from the stored
``MutatingWebhookConfiguration`` and ``ValidatingWebhookConfiguration`` objects
(admissionregistration.k8s.io/v1). For each write it selects the webhooks whose ``rules``,
``namespaceSelector``, ``objectSelector`` and ``matchConditions`` (CEL) match, POSTs an
``AdmissionReview`` (admission.k8s.io/v1, or v1beta1 when that is all a webhook accepts) to the
webhook, and turns the answer into a changed object (mutating, RFC 6902 JSON Patch), a refusal
(``AdmissionDenied`` with kube-apiserver's wording), or a failure handled by ``failurePolicy``.

Like kube-apiserver started with ``--admission-control-config-file``, the plugin can present a
client certificate to webhooks (:func:`load_admission_config` reads the same
``AdmissionConfiguration`` file, whose ``kubeConfigFile`` names the certificate per webhook
host), so webhooks that authenticate their caller by TLS client certificate work in the lab as
in a cluster. :func:`write_admission_client_auth` makes such a file, with a CA of its own.

The boundary: this module reads webhook configurations and namespaces through two callables the
server's store provides, and talks HTTP(S) to webhooks; it keeps no state between requests.
Known differences from kube-apiserver are listed in docs/lab.md ("Identity and admission").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import copy
import inspect
import ipaddress
import json
import logging
import ssl
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import yaml

from hack.lab.kube.contracts import AdmissionAttributes, AdmissionDenied
from hack.lab.kube.patching import PatchError, json_patch

if TYPE_CHECKING:
    from hack.lab.kube.server import BackgroundAPIServer

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
#: ``list_configs("mutating" | "validating")``: the stored webhook configuration objects.
ListConfigs = Callable[[str], Sequence[JSON] | Awaitable[Sequence[JSON]]]
#: ``get_namespace(name)``: the stored Namespace object, or None if there is none.
GetNamespace = Callable[[str], JSON | Awaitable[JSON | None] | None]
#: ``resolve_service(namespace, name, port)``: a base URL (scheme://host:port) for a Service.
ServiceResolver = Callable[[str, str, int], str]
#: ``client_credentials(host, port)``: the (certificate, key) files to present to a webhook at
#: that address, or None (kube-apiserver's admission kubeconfig, :func:`load_admission_config`).
ClientCredentials = Callable[[str, int], "tuple[str, str] | None"]

ADMISSION_GROUP = "admissionregistration.k8s.io"
#: Changes to these are never sent to webhooks, so that a broken webhook cannot lock itself in.
EXEMPT_RESOURCES = frozenset(
    {
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "mutatingadmissionpolicies",
        "mutatingadmissionpolicybindings",
    }
)
SUPPORTED_REVIEW_VERSIONS = ("v1", "v1beta1")
DEFAULT_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 30

OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}

#: The server may set this to a fresh list around the admission calls of one request to collect
#: the webhooks' ``warnings`` (e.g. to send them as ``Warning: 299 - "..."`` headers). When it
#: is unset, warnings are only logged.
ADMISSION_WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "ADMISSION_WARNINGS", default=None
)


class WebhookCallError(Exception):
    """Calling a webhook failed (unreachable, timed out, bad answer); ``failurePolicy`` decides."""


class SelectorError(ValueError):
    """A label selector in a webhook configuration cannot be evaluated."""


# --------------------------------------------------------------------------------------------
# Matching


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy a metav1.LabelSelector; an empty or absent selector matches."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key")
        operator = expr.get("operator")
        values = expr.get("values") or []
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise SelectorError(f"{operator!r} is not a valid label selector operator")
        if not ok:
            return False
    return True


def _is_namespace(attrs: AdmissionAttributes) -> bool:
    return attrs.group == "" and attrs.resource == "namespaces"


def _resource_matches(patterns: Sequence[str], resource: str, subresource: str) -> bool:
    for pattern in patterns:
        res, _, sub = pattern.partition("/")
        if (res in ("*", resource)) and (sub in ("*", subresource)):
            return True
    return False


def _scope_matches(scope: str | None, attrs: AdmissionAttributes) -> bool:
    # A Namespace is cluster-scoped although kube-apiserver gives it a namespace (its own name).
    cluster_scoped = _is_namespace(attrs) or not attrs.namespace
    if scope == "Cluster":
        return cluster_scoped
    if scope == "Namespaced":
        return not cluster_scoped
    return True


def rule_matches(rule: Mapping[str, Any], attrs: AdmissionAttributes) -> bool:
    """One entry of a webhook's ``rules`` against a request (kube-apiserver's rule matcher)."""
    operations = rule.get("operations") or []
    if "*" not in operations and attrs.operation not in operations:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and attrs.version not in versions:
        return False
    if not _resource_matches(rule.get("resources") or [], attrs.resource, attrs.subresource):
        return False
    return _scope_matches(rule.get("scope"), attrs)


def _labels_of(obj: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not isinstance(obj, Mapping):
        return None
    return dict((obj.get("metadata") or {}).get("labels") or {})


def object_selector_matches(
    selector: Mapping[str, Any] | None, obj: JSON | None, old: JSON | None
) -> bool:
    """The new or the old object's labels match (either one suffices, as in kube-apiserver)."""
    if not selector:
        return True
    for candidate in (obj, old):
        labels = _labels_of(candidate)
        if labels is not None and label_selector_matches(selector, labels):
            return True
    return False


# --------------------------------------------------------------------------------------------
# matchConditions (CEL)


def _cel_value(value: Any) -> Any:
    from celpy.adapter import json_to_cel  # noqa: PLC0415 - only for matchConditions

    return json_to_cel(value)


def match_conditions_pass(conditions: Sequence[Mapping[str, Any]], review_request: JSON) -> bool:
    """Evaluates ``matchConditions``: False if any is false; raises if one errs and none is false.

    The variables are ``object``, ``oldObject`` and ``request`` (the AdmissionRequest);
    ``authorizer`` is not available in the lab.
    """
    if not conditions:
        return True
    import celpy  # noqa: PLC0415 - only needed when a webhook has matchConditions

    env = celpy.Environment()
    activation = {
        "object": _cel_value(review_request.get("object")),
        "oldObject": _cel_value(review_request.get("oldObject")),
        "request": _cel_value(review_request),
    }
    errors: list[str] = []
    for condition in conditions:
        name = condition.get("name", "")
        try:
            result = env.program(env.compile(condition.get("expression", ""))).evaluate(activation)
        except Exception as exc:  # celpy raises several unrelated types for bad expressions
            errors.append(f"{name}: {exc}")
            continue
        if isinstance(result, Exception):
            errors.append(f"{name}: {result}")
        elif not isinstance(result, bool | celpy.celtypes.BoolType):
            errors.append(f"{name}: expected a bool, got {type(result).__name__}")
        elif not result:
            return False
    if errors:
        raise WebhookCallError("matchConditions evaluation failed: " + "; ".join(errors))
    return True


# --------------------------------------------------------------------------------------------
# The admission plugin


@dataclass(frozen=True)
class _Hook:
    """One webhook entry of a configuration, with the configuration's name for ordering."""

    config_name: str
    spec: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def fails_closed(self) -> bool:
        return bool(self.spec.get("failurePolicy", "Fail") != "Ignore")


class WebhookAdmission:
    """Implements ``contracts.Admission`` by calling the configured admission webhooks."""

    def __init__(
        self,
        list_configs: ListConfigs,
        get_namespace: GetNamespace,
        *,
        timeout_default: float = DEFAULT_TIMEOUT_SECONDS,
        resolve_service: ServiceResolver | None = None,
        client_credentials: ClientCredentials | None = None,
    ) -> None:
        self._list_configs = list_configs
        self._get_namespace = get_namespace
        self._timeout_default = timeout_default
        self._resolve_service = resolve_service
        self._client_credentials = client_credentials

    @classmethod
    def install(cls, lab: BackgroundAPIServer, **kwargs: Any) -> WebhookAdmission:
        """Makes a running lab server call admission webhooks, reading its own store."""
        api = lab.server
        admission = cls(api.list_webhook_configurations, api.get_namespace, **kwargs)
        # Swapped on the server's loop, between two requests.
        lab.call(setattr, api.registry, "admission", admission)
        return admission

    # -- contracts.Admission ------------------------------------------------------------------

    async def mutate(
        self, attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None
    ) -> JSON | None:
        if attrs.group == ADMISSION_GROUP and attrs.resource in EXEMPT_RESOURCES:
            return obj
        hooks = await self._hooks("mutating")
        if not hooks:
            return obj
        current = copy.deepcopy(obj) if obj is not None else None
        # Which object each webhook last saw, to re-invoke "IfNeeded" ones after later changes.
        seen: dict[int, JSON | None] = {}
        for index, hook in enumerate(hooks):
            called, current = await self._mutate_once(hook, attrs, current, old)
            if called:
                seen[index] = copy.deepcopy(current)
        for index, hook in enumerate(hooks):
            if index not in seen or hook.spec.get("reinvocationPolicy", "Never") != "IfNeeded":
                continue
            if seen[index] != current:
                _, current = await self._mutate_once(hook, attrs, current, old)
        return current

    async def validate(
        self, attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None
    ) -> None:
        if attrs.group == ADMISSION_GROUP and attrs.resource in EXEMPT_RESOURCES:
            return
        hooks = await self._hooks("validating")
        if not hooks:
            return
        # Validating webhooks run in parallel, as in kube-apiserver; the first refusal in
        # configuration order is reported, so the answer does not depend on timing.
        results = await asyncio.gather(
            *(self._validate_once(hook, attrs, obj, old) for hook in hooks),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    # -- selection ----------------------------------------------------------------------------

    async def _hooks(self, kind: str) -> list[_Hook]:
        configs = await _maybe_await(self._list_configs(kind))
        ordered = sorted(configs, key=lambda c: str((c.get("metadata") or {}).get("name", "")))
        return [
            _Hook(config_name=str((config.get("metadata") or {}).get("name", "")), spec=hook)
            for config in ordered
            for hook in (config.get("webhooks") or [])
            if isinstance(hook, Mapping)
        ]

    async def _namespace_labels(
        self, attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None
    ) -> dict[str, str]:
        if _is_namespace(attrs) and not attrs.subresource and attrs.operation != "DELETE":
            # A namespace being created or updated is judged by its new labels.
            return _labels_of(obj) or {}
        name = attrs.name if _is_namespace(attrs) else (attrs.namespace or "")
        namespace = await _maybe_await(self._get_namespace(name)) if name else None
        if namespace is None and _is_namespace(attrs):
            namespace = old
        return _labels_of(namespace) or {}

    async def _matches(
        self, hook: _Hook, attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None
    ) -> bool:
        spec = hook.spec
        if not any(rule_matches(rule, attrs) for rule in spec.get("rules") or []):
            return False
        try:
            if not object_selector_matches(spec.get("objectSelector"), obj, old):
                return False
            ns_selector = spec.get("namespaceSelector")
            cluster_scoped = not attrs.namespace and not _is_namespace(attrs)
            if ns_selector and not cluster_scoped:
                labels = await self._namespace_labels(attrs, obj, old)
                if not label_selector_matches(ns_selector, labels):
                    return False
        except SelectorError as exc:
            raise WebhookCallError(f"invalid selector: {exc}") from exc
        return True

    # -- calling ------------------------------------------------------------------------------

    async def _mutate_once(
        self, hook: _Hook, attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None
    ) -> tuple[bool, JSON | None]:
        """Calls one mutating webhook if it matches; returns (called, object after its patch)."""
        try:
            if not await self._matches(hook, attrs, obj, old):
                return False, obj
            response = await self._call(hook, attrs, obj, old)
            if response is None:
                return False, obj
            self._check_allowed(hook, response)
            return True, _apply_patch(response, obj)
        except WebhookCallError as exc:
            self._on_failure(hook, exc)
            return False, obj

    async def _validate_once(
        self, hook: _Hook, attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None
    ) -> None:
        try:
            if not await self._matches(hook, attrs, obj, old):
                return
            response = await self._call(hook, attrs, obj, old)
            if response is not None:
                self._check_allowed(hook, response)
        except WebhookCallError as exc:
            self._on_failure(hook, exc)

    def _on_failure(self, hook: _Hook, exc: WebhookCallError) -> None:
        if hook.fails_closed:
            raise AdmissionDenied(
                f'Internal error occurred: failed calling webhook "{hook.name}": {exc}',
                code=500,
                reason="InternalError",
            ) from exc
        logger.warning("failed calling webhook %r, failing open: %s", hook.name, exc)

    @staticmethod
    def _check_allowed(hook: _Hook, response: JSON) -> None:
        warnings = [str(w) for w in response.get("warnings") or []]
        collected = ADMISSION_WARNINGS.get()
        for warning in warnings:
            logger.warning("admission webhook %r warns: %s", hook.name, warning)
            if collected is not None:
                collected.append(warning)
        if response.get("allowed") is True:
            return
        status = response.get("status") or {}
        denied_by = f'admission webhook "{hook.name}" denied the request'
        if status.get("message"):
            message = f"{denied_by}: {status['message']}"
        elif status.get("reason"):
            message = f"{denied_by}: {status['reason']}"
        else:
            message = f"{denied_by} without explanation"
        code = status.get("code")
        # As kube-apiserver: a refusal is never answered with a success or redirect code.
        code = code if isinstance(code, int) and code >= 400 else 400
        raise AdmissionDenied(message, code=code, reason=str(status.get("reason") or ""))

    def _url(self, hook: _Hook) -> str:
        client = hook.spec.get("clientConfig") or {}
        if client.get("url"):
            return str(client["url"])
        service = client.get("service")
        if service:
            if self._resolve_service is None:
                raise WebhookCallError(
                    "clientConfig.service cannot be resolved in the lab; use clientConfig.url"
                )
            base = self._resolve_service(
                str(service.get("namespace", "")),
                str(service.get("name", "")),
                int(service.get("port") or 443),
            )
            return base.rstrip("/") + str(service.get("path") or "")
        raise WebhookCallError("clientConfig has neither url nor service")

    def _ssl_context(self, hook: _Hook, url: str) -> ssl.SSLContext:
        client = hook.spec.get("clientConfig") or {}
        bundle = client.get("caBundle")
        if not bundle:
            context = ssl.create_default_context()
        else:
            try:
                pem = base64.b64decode(bundle, validate=True).decode("ascii")
                context = ssl.create_default_context(cadata=pem)
            except (binascii.Error, UnicodeDecodeError, ssl.SSLError) as exc:
                raise WebhookCallError(
                    f"clientConfig.caBundle is not a base64 PEM bundle: {exc}"
                ) from exc
        if self._client_credentials is not None:
            parts = urlsplit(url)
            found = self._client_credentials(parts.hostname or "", parts.port or 443)
            if found is not None:
                try:
                    context.load_cert_chain(*found)
                except (OSError, ssl.SSLError) as exc:
                    raise WebhookCallError(f"cannot load the client certificate: {exc}") from exc
        return context

    def _timeout(self, hook: _Hook) -> float:
        seconds = hook.spec.get("timeoutSeconds")
        if not isinstance(seconds, int | float) or seconds <= 0:
            return self._timeout_default
        return float(min(seconds, MAX_TIMEOUT_SECONDS))

    async def _call(
        self, hook: _Hook, attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None
    ) -> JSON | None:
        """POSTs the AdmissionReview; returns its ``response``, or None if the call was skipped."""
        versions = hook.spec.get("admissionReviewVersions") or ["v1"]
        version = next((v for v in versions if v in SUPPORTED_REVIEW_VERSIONS), None)
        if version is None:
            raise WebhookCallError(
                f"webhook does not accept v1 or v1beta1 AdmissionReview (accepts {versions})"
            )
        if attrs.dry_run and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise AdmissionDenied(
                f'admission webhook "{hook.name}" does not support dry run',
                code=400,
                reason="BadRequest",
            )
        request = build_review_request(attrs, obj, old)
        if not match_conditions_pass(hook.spec.get("matchConditions") or [], request):
            return None
        review = {
            "apiVersion": f"admission.k8s.io/{version}",
            "kind": "AdmissionReview",
            "request": request,
        }
        url = self._url(hook)
        ssl_context: ssl.SSLContext | bool = False
        if url.startswith("https://"):
            ssl_context = self._ssl_context(hook, url)
        elif not url.startswith("http://"):
            raise WebhookCallError(f"unsupported URL scheme in {url!r}")
        timeout = self._timeout(hook)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.post(url, json=review, ssl=ssl_context) as resp,
            ):
                body = await resp.read()
                if resp.status != 200:
                    raise WebhookCallError(
                        f'failed to call webhook: Post "{url}": the server responded with'
                        f" {resp.status} {resp.reason}: {body[:200].decode(errors='replace')}"
                    )
        except TimeoutError as exc:
            raise WebhookCallError(
                f'failed to call webhook: Post "{url}": context deadline exceeded'
                f" (timeout {timeout:g}s)"
            ) from exc
        except aiohttp.ClientError as exc:
            raise WebhookCallError(f'failed to call webhook: Post "{url}": {exc}') from exc
        return _parse_review_response(body, review)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def build_review_request(attrs: AdmissionAttributes, obj: JSON | None, old: JSON | None) -> JSON:
    """The ``request`` of an AdmissionReview for one admission call."""
    kind = {"group": attrs.group, "version": attrs.version, "kind": attrs.kind}
    resource = {"group": attrs.group, "version": attrs.version, "resource": attrs.resource}
    request: JSON = {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": dict(kind),
        "requestResource": dict(resource),
        "name": attrs.name,
        "operation": attrs.operation,
        "userInfo": attrs.user.to_json(),
        "object": obj,
        "oldObject": old,
        "dryRun": attrs.dry_run,
    }
    if attrs.subresource:
        request["subResource"] = attrs.subresource
        request["requestSubResource"] = attrs.subresource
    if attrs.namespace:
        request["namespace"] = attrs.namespace
    if attrs.operation in OPTIONS_KIND:
        request["options"] = {
            "apiVersion": "meta.k8s.io/v1",
            "kind": OPTIONS_KIND[attrs.operation],
            **({"dryRun": ["All"]} if attrs.dry_run else {}),
        }
    return request


def _parse_review_response(body: bytes, review: JSON) -> JSON:
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise WebhookCallError(f"the response is not JSON: {exc}") from exc
    if not isinstance(answer, dict):
        raise WebhookCallError("the response is not an AdmissionReview object")
    if answer.get("apiVersion") != review["apiVersion"] or answer.get("kind") != "AdmissionReview":
        raise WebhookCallError(
            f"expected webhook response of {review['apiVersion']}, Kind=AdmissionReview,"
            f" got {answer.get('apiVersion')}, Kind={answer.get('kind')}"
        )
    response = answer.get("response")
    if not isinstance(response, dict):
        raise WebhookCallError("webhook response was absent")
    expected_uid = review["request"]["uid"]
    if response.get("uid") != expected_uid:
        raise WebhookCallError(
            f'expected response.uid="{expected_uid}", got "{response.get("uid", "")}"'
        )
    if not isinstance(response.get("allowed"), bool):
        raise WebhookCallError("response.allowed is missing or not a boolean")
    return response


def _apply_patch(response: JSON, obj: JSON | None) -> JSON | None:
    patch = response.get("patch")
    if not patch:
        return obj
    patch_type = response.get("patchType")
    if patch_type != "JSONPatch":
        raise WebhookCallError(f'unsupported patch type "{patch_type}"')
    if obj is None:
        raise WebhookCallError("a patch was returned for a request without an object")
    try:
        ops = json.loads(base64.b64decode(patch, validate=True))
        patched = json_patch(obj, ops)
    except (binascii.Error, PatchError, ValueError, KeyError, TypeError) as exc:
        raise WebhookCallError(f"the webhook's patch cannot be applied: {exc}") from exc
    if not isinstance(patched, dict):
        raise WebhookCallError("the webhook's patch did not leave an object")
    return patched


# --------------------------------------------------------------------------------------------
# Webhook certificates


def write_webhook_certificate(
    directory: str | Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> tuple[Path, Path]:
    """A self-signed serving certificate and key for a webhook on ``hosts``; (cert, key) paths.

    kopf's own self-signed certificates need ``certbuilder``/``oscrypto``, whose released
    version cannot load OpenSSL 3.0.10 and later; this makes the equivalent with the
    ``openssl`` command, to be passed as ``kopf.WebhookServer(certfile=..., pkeyfile=...)``
    (kopf then sends the certificate itself as the ``caBundle``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "webhook.crt", directory / "webhook.key"
    sans = ",".join(f"IP:{host}" if _is_ip(host) else f"DNS:{host}" for host in hosts)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-nodes",
            "-days",
            "7",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            f"/CN={hosts[0]}",
            "-addext",
            f"subjectAltName={sans}",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def ca_bundle(cert: str | Path) -> str:
    """The ``clientConfig.caBundle`` value trusting the PEM certificate at ``cert``."""
    return base64.b64encode(Path(cert).read_bytes()).decode("ascii")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Client certificates: kube-apiserver's admission configuration

ADMISSION_PLUGINS = ("MutatingAdmissionWebhook", "ValidatingAdmissionWebhook")


def _credentials_by_name(kubeconfig: Path) -> dict[str, tuple[str, str]]:
    config = yaml.safe_load(kubeconfig.read_text()) or {}
    found: dict[str, tuple[str, str]] = {}
    for entry in config.get("users") or []:
        user = entry.get("user") or {}
        cert, key = user.get("client-certificate"), user.get("client-key")
        if entry.get("name") and cert and key:
            base = kubeconfig.parent
            found[str(entry["name"])] = (str(base / cert), str(base / key))
    return found


def load_admission_config(path: str | Path) -> ClientCredentials:
    """The client certificates an ``AdmissionConfiguration`` file gives the webhook plugins
    (``--admission-control-config-file``): its ``kubeConfigFile``'s ``users`` are matched by
    name against the webhook's address as kube-apiserver does: ``host:port``, then ``host``
    for port 443, then ``*.domain[:port]`` for each parent domain, then ``*``."""
    path = Path(path)
    config = yaml.safe_load(path.read_text()) or {}
    users: dict[str, tuple[str, str]] = {}
    for plugin in config.get("plugins") or []:
        if plugin.get("name") not in ADMISSION_PLUGINS:
            continue
        kubeconfig = (plugin.get("configuration") or {}).get("kubeConfigFile")
        if kubeconfig:
            users.update(_credentials_by_name(path.parent / kubeconfig))

    def credentials(host: str, port: int) -> tuple[str, str] | None:
        names = [f"{host}:{port}"] + ([host] if port == 443 else [])
        labels = host.split(".")
        for index in range(1, len(labels)):
            domain = ".".join(labels[index:])
            names += [f"*.{domain}:{port}"] + ([f"*.{domain}"] if port == 443 else [])
        names.append("*")
        return next((users[name] for name in names if name in users), None)

    return credentials


@dataclass(frozen=True)
class AdmissionClientAuth:
    """A CA and the client certificate it signed for the API server's webhook calls, with the
    admission configuration that presents it: ``config`` is what kube-apiserver takes as
    ``--admission-control-config-file`` (and the lab's server as ``admission_config``), ``ca``
    what a webhook trusts its caller by."""

    ca: Path
    cert: Path
    key: Path
    kubeconfig: Path
    config: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def write_ca(directory: str | Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (EC P-256, 7 days) in ``directory``; (certificate, key) paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-nodes", "-days", "7", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", str(key), "-out", str(cert),
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def write_client_certificate(
    directory: str | Path, ca: tuple[Path, Path], common_name: str
) -> tuple[Path, Path]:
    """A client certificate (``extendedKeyUsage=clientAuth``) for ``common_name`` signed by
    ``ca`` (certificate, key); (certificate, key) paths in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{common_name}.crt", directory / f"{common_name}.key"
    request, extensions = directory / f"{common_name}.csr", directory / f"{common_name}.ext"
    extensions.write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={common_name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-set_serial", str(int.from_bytes(uuid.uuid4().bytes[:8], "big")), "-days", "7",
        "-out", str(cert), "-extfile", str(extensions),
    )  # fmt: skip
    return cert, key


def write_admission_client_auth(
    directory: str | Path, common_name: str = "kube-apiserver-admission"
) -> AdmissionClientAuth:
    """A CA, a client certificate for ``common_name`` and the ``AdmissionConfiguration`` (with
    its kubeconfig, user ``*``) that makes an API server present it to every webhook."""
    directory = Path(directory)
    ca = write_ca(directory, "admission-client-ca")
    cert, key = write_client_certificate(directory, ca, common_name)
    kubeconfig = directory / "admission-kubeconfig.yaml"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [
                    {"name": "*", "user": {"client-certificate": cert.name, "client-key": key.name}}
                ],
            }
        )
    )
    config = directory / "admission-config.yaml"
    plugin_config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": kubeconfig.name,
    }
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "AdmissionConfiguration",
                "plugins": [
                    {"name": name, "configuration": plugin_config} for name in ADMISSION_PLUGINS
                ],
            }
        )
    )
    return AdmissionClientAuth(ca=ca[0], cert=cert, key=key, kubeconfig=kubeconfig, config=config)
