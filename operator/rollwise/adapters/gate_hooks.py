"""Gating webhooks' calls (``spec.strategy.canary.webhooks``): one bounded POST each.

A webhook's URL is the Rollout author's choice, but the operator calls from its own network
position, so every call goes through the notifications' guarded sender
(:class:`rollwise.adapters.notify.SinkSender`) under the same :class:`HostPolicy` (the
operator's settings ``ROLLWISE_NOTIFY_*``): the scheme, the host allow-list and the denied
networks, checked on the address the connection actually reached; no proxy, no redirect, the
answer read within 64 KiB and the webhook's timeout. A URL the policy refuses outright is found
before any call (:meth:`GateHooks.refusal`), which makes the spec invalid.

The answer is the HTTP status, or none with what went wrong; nothing raises. Messages name
the host, never the whole URL (it may carry a token).
"""

from __future__ import annotations

import json
from typing import Any

from rollwise.adapters.errors import SinkError, SinkForbidden
from rollwise.adapters.notify import SinkSender
from rollwise.core.notification_bodies import Outgoing

#: The header carrying the call's id (also ``id`` in the body): one per webhook and revision.
ID_HEADER = "X-Rollwise-Webhook-Id"


class GateHooks:
    """Calls gating webhooks under the operator's host policy; thread-safe (one call blocks
    its worker thread for at most the webhook's timeout)."""

    def __init__(self, sender: SinkSender) -> None:
        self._sender = sender

    def refusal(self, url: str) -> str | None:
        """Why the host policy refuses ``url`` before any connection (scheme, host list, a
        literal address in a denied network, credentials in the URL); None when it may be
        called."""
        try:
            self._sender.policy.check_url(url)
        except SinkForbidden as exc:
            return exc.message.replace("the sink's url", "the webhook's url").replace(
                "for notifications", "for webhooks"
            )
        return None

    def call(
        self, name: str, url: str, body: dict[str, Any], timeout: float
    ) -> tuple[int | None, str]:
        """POST ``body`` as JSON to ``url``: the receiver's status, or none with the reason
        (refused by the host policy, unreachable, too slow, a redirect)."""
        outgoing = Outgoing(
            headers=(
                ("Content-Type", "application/json"),
                ("User-Agent", "rollwise-operator"),
                (ID_HEADER, str(body.get("id", ""))),
            ),
            body=json.dumps(body, sort_keys=True).encode(),
        )
        try:
            code = self._sender.post(url, outgoing, timeout)
        except SinkError as exc:
            if exc.status is not None:
                return exc.status, ""
            return None, exc.message
        return code, ""


__all__ = ["ID_HEADER", "GateHooks"]
