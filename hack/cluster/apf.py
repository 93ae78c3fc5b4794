"""API Priority and Fairness objects that throttle one client of the lab cluster.

kube-apiserver answers 429 Too Many Requests when a request's priority level has no seat
left and its limit response is ``Reject``. ``throttle_manifests`` builds a
``PriorityLevelConfiguration`` with few (by default no) seats and a ``FlowSchema`` that sends
every request of one user or ServiceAccount there, ahead of the built-in schemas.

A level with no seats still lets one request run when none is running (kube-apiserver's
fair-queuing never starves a level completely), so the client is held to one request at a
time: whatever it sends while one is in flight is refused at once, with ``Retry-After``. A
client that sends one request after another is not refused; for a 429 on every request,
inject it in front of the server instead. Members of ``system:masters`` cannot be
throttled: the built-in ``exempt`` schema comes first.

Only manifests: ``Cluster.throttle`` applies them and ``Cluster.unthrottle`` removes them;
anyone else may apply them with kubectl (``kubectl apply -f`` of the two documents).
"""

from __future__ import annotations

import re
from typing import Any

API_VERSION = "flowcontrol.apiserver.k8s.io/v1"

#: Ahead of every built-in FlowSchema except ``exempt`` (1) and ``probes`` (2).
MATCHING_PRECEDENCE = 10


def throttle_name(subject: str) -> str:
    """The name both objects get for a subject (a DNS-1123 subdomain)."""
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", subject.lower()).strip("-.")
    return f"lab-throttle-{cleaned}"[:253]


def throttle_manifests(
    *,
    user: str | None = None,
    service_account: tuple[str, str] | None = None,
    seats: int = 0,
    name: str | None = None,
) -> list[dict[str, Any]]:
    """The PriorityLevelConfiguration and FlowSchema that throttle ``user`` (a user name) or
    ``service_account`` (namespace, name).

    ``seats`` is the level's nominal concurrency shares: 0 holds the subject to one request in
    flight; n > 0 gives it a share of the server's seats (about 3 for n = 1 with
    kube-apiserver's default limits). Requests beyond that are refused with 429 at once: the
    level neither lends nor borrows seats and rejects instead of queueing.
    """
    if (user is None) == (service_account is None):
        raise ValueError("throttle exactly one of user= or service_account=")
    if seats < 0:
        raise ValueError("seats must be 0 or more")
    subject: dict[str, Any]
    if user is not None:
        subject = {"kind": "User", "user": {"name": user}}
        label = user
    else:
        assert service_account is not None
        namespace, account = service_account
        subject = {
            "kind": "ServiceAccount",
            "serviceAccount": {"namespace": namespace, "name": account},
        }
        label = f"{namespace}-{account}"
    object_name = name or throttle_name(label)
    level = {
        "apiVersion": API_VERSION,
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": object_name, "labels": {"lab.rollwise.dev/throttle": "true"}},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": seats,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"},
            },
        },
    }
    schema = {
        "apiVersion": API_VERSION,
        "kind": "FlowSchema",
        "metadata": {"name": object_name, "labels": {"lab.rollwise.dev/throttle": "true"}},
        "spec": {
            "priorityLevelConfiguration": {"name": object_name},
            "matchingPrecedence": MATCHING_PRECEDENCE,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [subject],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "clusterScope": True,
                            "namespaces": ["*"],
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    return [level, schema]
