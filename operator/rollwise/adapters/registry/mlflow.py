"""The MLflow alias store: the model registry's own aliases, through its REST API 2.0.

Endpoints (all under ``<tracking URI>/api/2.0/mlflow``):

- get: ``GET registered-models/alias?name=&alias=`` → ``{"model_version": {...}}``;
- set: ``POST registered-models/alias`` ``{name, alias, version}``;
- delete: ``DELETE registered-models/alias`` ``{name, alias}`` (a JSON body: this server
  reads DELETE parameters from the body, not the query string);
- ``GET registered-models/get?name=`` tells an unknown model from an unset alias where the
  server's answer does not.

What an alias points at is read from the model version: ``version``, ``source`` as the URI,
and the digest from the version tag ``rollwise.dev/digest`` (MLflow has no digest field; the
pipeline that registers a version tags it, and a version without the tag reads back with no
digest). ``set`` moves only the alias: the URI and digest are the version's (the
``uri``/``digest`` of the target passed in are not stored), so ``set`` verifies the version it
reads back and returns the registry's view of that version.

Error mapping: connection failures, timeouts, 429 and 5xx → ``RegistryUnavailable``
(retryable, with ``Retry-After``); ``RESOURCE_DOES_NOT_EXIST`` → ``ModelVersionNotFound``;
reading an alias that is not set is no error (None): MLflow 3 answers it with
``INVALID_PARAMETER_VALUE`` "Registered model alias production not found." and an unknown
model with ``RESOURCE_DOES_NOT_EXIST`` (older servers answer an unset alias with
``RESOURCE_DOES_NOT_EXIST`` too, so that answer is confirmed with ``registered-models/get``);
pointing an alias at an unknown version is ``RESOURCE_DOES_NOT_EXIST`` →
``ModelVersionNotFound``; anything else (401/403 included) → ``RegistryError``. Every request
has a bounded timeout; an optional bearer token is sent as ``Authorization`` (what
``MLFLOW_TRACKING_TOKEN`` carries for MLflow's own client).

The store only ever talks to a registry of the operator's settings (:class:`MLflowRegistry`,
chosen by name; a spec never supplies an address), follows no redirect (a redirect could carry
the token elsewhere), and its error messages carry the HTTP status and MLflow's error code,
never what the server wrote: they end up in status and events.

MLflow has no compare-and-set for aliases, so ``expected`` is checked by reading the alias
just before the write. The check is not atomic with the write: another writer that moves the
alias between that read and our write (a window of about one request round trip) is
overwritten without notice, and the read-back then shows our version. A writer that moves it
after our write and before the read-back is caught (``AliasNotVerified``). Rollwise itself
serialises ModelReleases per (model, alias); the window only matters against writers outside
Rollwise (a person or a pipeline flipping the alias by hand at the same moment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import requests

from rollwise.adapters.bounded_http import AnswerTooLarge, RedirectRefused, bounded_session
from rollwise.adapters.errors import (
    AliasNotVerified,
    ModelVersionNotFound,
    RegistryError,
    RegistryUnavailable,
)
from rollwise.adapters.gates.fetch import status_text
from rollwise.adapters.registry.base import AliasTarget, check_expected, verify

#: The model version tag holding the artifact digest.
DIGEST_TAG = "rollwise.dev/digest"

#: Seconds one request to MLflow may take (connect and read) before it is ``RegistryUnavailable``.
DEFAULT_TIMEOUT = 10.0

_API = "/api/2.0/mlflow"
#: What an MLflow error code looks like; anything else is not repeated in a message.
_ERROR_CODE = re.compile(r"^[A-Z][A-Z_]{0,63}$")


@dataclass(frozen=True)
class MLflowRegistry:
    """An MLflow registry of the operator's settings: its ``name`` (what specs write), its
    ``url`` and the bearer ``token`` sent to it (and to it only)."""

    name: str
    url: str
    token: str | None = field(default=None, repr=False)


def error_code(answer: Any) -> str:
    """MLflow's ``error_code`` from an answer, when it looks like one; else empty."""
    code = answer.get("error_code") if isinstance(answer, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class MLflowAliasStore:
    """Aliases of the MLflow registry ``registry``."""

    def __init__(
        self,
        registry: MLflowRegistry,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        digest_tag: str = DIGEST_TAG,
        session: requests.Session | None = None,
    ) -> None:
        self.registry = registry
        self.base = registry.url.rstrip("/") + _API
        self.timeout = timeout
        self.digest_tag = digest_tag
        # Answers are read within a bound and redirects are refused (bounded_http).
        self.session = session or bounded_session()
        if registry.token:
            self.session.headers["Authorization"] = f"Bearer {registry.token}"

    # -- transport ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One request; the JSON answer on 2xx, else the mapped ``RegistryError``. Messages
        name the model (and version) asked about, from the request, never from the answer."""
        asked = {**(params or {}), **(body or {})}
        about = f"model {asked.get('name', '?')!r}" + (
            f" version {asked['version']}" if "version" in asked else ""
        )
        what = f"MLflow registry {self.registry.name}: {method} {endpoint}"
        try:
            response = self.session.request(
                method,
                f"{self.base}/{endpoint}",
                params=params,
                json=body,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (RedirectRefused, AnswerTooLarge) as exc:
            raise RegistryError(f"{what}: {exc}, not an MLflow answer") from exc
        except requests.RequestException as exc:
            raise RegistryUnavailable(f"{what}: MLflow unreachable ({type(exc).__name__})") from exc
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = None
        status = status_text(response.status_code)
        if response.status_code == 429 or response.status_code >= 500:
            raise RegistryUnavailable(f"{what}: {status}", retry_after=_retry_after(response))
        if not isinstance(answer, dict) or 300 <= response.status_code < 400:
            raise RegistryError(f"{what}: {status}, not an MLflow answer")
        if response.ok:
            return answer
        code = error_code(answer)
        message = f"{what}: {code or status}"
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelVersionNotFound(f"{what}: {about} not found ({code})")
        text = answer.get("message")
        if (
            code == "INVALID_PARAMETER_VALUE"
            and isinstance(text, str)
            and "alias" in text
            and "not found" in text
        ):
            raise _AliasNotSet(message)
        raise RegistryError(message)

    # -- reading -----------------------------------------------------------------------------

    def _target(self, version: dict[str, Any]) -> AliasTarget:
        tags = {
            str(tag.get("key")): str(tag.get("value"))
            for tag in version.get("tags") or []
            if isinstance(tag, dict)
        }
        return AliasTarget(
            version=str(version.get("version", "")),
            uri=str(version.get("source", "")),
            digest=tags.get(self.digest_tag),
        )

    def model_version(self, model: str, version: str) -> AliasTarget:
        """The target a version stands for (``ModelVersionNotFound`` when it does not exist)."""
        answer = self._call("GET", "model-versions/get", params={"name": model, "version": version})
        found = answer.get("model_version")
        if not isinstance(found, dict):
            raise RegistryError("MLflow model-versions/get answered without a model_version")
        return self._target(found)

    def get(self, model: str, alias: str) -> AliasTarget | None:
        try:
            answer = self._call(
                "GET", "registered-models/alias", params={"name": model, "alias": alias}
            )
        except _AliasNotSet:
            # MLflow 3: "Registered model alias production not found." (400) for an unset alias.
            return None
        except ModelVersionNotFound:
            # An unknown model (MLflow 3), or an unset alias (older servers): only the former
            # is an error, and ``registered-models/get`` raises it.
            self._call("GET", "registered-models/get", params={"name": model})
            return None
        found = answer.get("model_version")
        if not isinstance(found, dict):
            raise RegistryError("MLflow registered-models/alias answered without a model_version")
        return self._target(found)

    # -- writing -----------------------------------------------------------------------------

    def set(
        self, model: str, alias: str, target: AliasTarget, *, expected: str | None
    ) -> AliasTarget:
        current = self.get(model, alias)
        check_expected(model, alias, current, expected)
        if current is not None and current.version == target.version:
            return current
        # An unknown version is refused here with RESOURCE_DOES_NOT_EXIST.
        self._call(
            "POST",
            "registered-models/alias",
            body={"name": model, "alias": alias, "version": target.version},
        )
        read_back = self.get(model, alias)
        if read_back is None or read_back.version != target.version:
            raise AliasNotVerified(
                f"alias {alias!r} of model {model!r} reads back as {read_back}, not version "
                f"{target.version!r} after the write"
            )
        return read_back

    def delete(self, model: str, alias: str, *, expected: str | None) -> None:
        current = self.get(model, alias)
        check_expected(model, alias, current, expected)
        if current is None:
            return
        self._call("DELETE", "registered-models/alias", body={"name": model, "alias": alias})
        verify(model, alias, None, self.get(model, alias))


class _AliasNotSet(RegistryError):
    """MLflow 3's answer for an alias that is not set; ``get`` turns it into None."""


__all__ = ["DEFAULT_TIMEOUT", "DIGEST_TAG", "MLflowAliasStore", "MLflowRegistry", "error_code"]
