"""API errors of the lab's API emulator, shaped as kube-apiserver's ``Status`` objects.

Every failure the emulator answers is an :class:`APIError` carrying the HTTP code, the
``reason`` and the ``message`` a real server would send, so that kubectl prints the same
errors and clients (kopf, the ``kubernetes`` client) take the same code paths.
"""

from __future__ import annotations

from typing import Any


def qualified(plural: str, group: str) -> str:
    """``configmaps`` or ``rollouts.rollwise.dev``: how messages name a resource."""
    return f"{plural}.{group}" if group else plural


class APIError(Exception):
    """An error answered as a ``Status`` with ``code``, ``reason`` and ``message``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 300 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    if not reason:
        del body["reason"]
    return body


def _details(plural: str, group: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return details


def not_found(plural: str, group: str, name: str) -> APIError:
    return APIError(
        404,
        "NotFound",
        f'{qualified(plural, group)} "{name}" not found',
        details=_details(plural, group, name),
    )


def already_exists(plural: str, group: str, name: str) -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        details=_details(plural, group, name),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> APIError:
    why = why or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        details=_details(plural, group, name),
    )


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def forbidden(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


#: apimachinery's field.ErrorType strings mapped to the ``reason`` of a Status cause.
CAUSE_REASONS = {
    "Invalid value": "FieldValueInvalid",
    "Required value": "FieldValueRequired",
    "Unsupported value": "FieldValueNotSupported",
    "Duplicate value": "FieldValueDuplicate",
    "Too many": "FieldValueTooMany",
    "Too long": "FieldValueTooLong",
    "Forbidden": "FieldValueForbidden",
    "Not found": "FieldValueNotFound",
    "Internal error": "InternalError",
    "Type": "FieldValueTypeInvalid",
}


def invalid(kind: str, group: str, name: str, errors: list[Any]) -> APIError:
    """422 Invalid; ``errors`` are field errors with ``path``, ``type`` and ``body()``,
    or plain ``(path, type, message)`` triples."""
    causes = []
    texts = []
    for err in errors:
        if isinstance(err, tuple):
            path, etype, body = err
            text = f"{path}: {body}" if path else body
        else:
            path, etype, body, text = err.path, err.type, err.body(), str(err)
        causes.append(
            {
                "reason": CAUSE_REASONS.get(etype, "FieldValueInvalid"),
                "message": body,
                "field": path,
            }
        )
        texts.append(text)
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    what = f"{kind}.{group}" if group else kind
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return APIError(422, "Invalid", f'{what} "{name}" is invalid: {joined}', details=details)
