"""The upstream Rollouts of ``spec.promotion.after``, read for a pass
(:func:`read_upstreams`).

Read only while the current revision may wait for them (it is neither the stable nor the
canary revision): one GET per upstream through the cluster port. An upstream that does not
exist is observed as such (the revision waits); one the operator may not read (a
namespace-scoped operator, whose Role does not reach the upstream's namespace) makes the spec
invalid with a message naming the namespace, so nothing is decided on a guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rollwise.adapters.errors import Forbidden
from rollwise.core.observations import UpstreamRead
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.runtime.rollout.ports import ClusterPort


def upstream_read(namespace: str, name: str, body: Mapping[str, Any] | None) -> UpstreamRead:
    """What the core needs of an upstream Rollout as the API server returned it (None: not
    found); a status field that does not parse is taken as absent."""
    if body is None:
        return UpstreamRead(namespace=namespace, rollout=name, found=False)
    status = body.get("status")
    status = status if isinstance(status, Mapping) else {}

    def text(key: str) -> str | None:
        value = status.get(key)
        return value if isinstance(value, str) and value else None

    since: datetime | None = None
    raw = text("healthySince")
    if raw is not None:
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            since = None
    return UpstreamRead(
        namespace=namespace,
        rollout=name,
        phase=text("phase"),
        stable_revision=text("stableRevision"),
        canary_revision=text("canaryRevision"),
        healthy_since=since,
    )


def needs_upstreams(spec: RolloutSpec, status: RolloutStatus | None, template_hash: str) -> bool:
    """Whether this pass reads the upstream Rollouts: the spec names some and the current
    revision is a new one (a first revision has nothing to canary against and becomes stable)."""
    if spec.promotion is None or not spec.promotion.after:
        return False
    if status is None or status.stable_revision is None:
        return False
    return template_hash not in (status.stable_revision, status.canary_revision)


async def read_upstreams(
    cluster: ClusterPort, spec: RolloutSpec, *, namespace: str, name: str
) -> tuple[dict[tuple[str, str], UpstreamRead], list[str]]:
    """Each upstream Rollout of ``spec.promotion.after`` (of the Rollout ``namespace/name``),
    and a message for each the operator may not read (``Forbidden``: its RBAC does not reach
    that namespace) or that is the Rollout itself (it would wait for ever). Other failures
    raise (``AdapterError``: the pass is retried)."""
    after = spec.promotion.after if spec.promotion is not None else []

    def read() -> tuple[dict[tuple[str, str], UpstreamRead], list[str]]:
        found: dict[tuple[str, str], UpstreamRead] = {}
        refused: list[str] = []
        for i, upstream in enumerate(after):
            key = (upstream.namespace, upstream.rollout)
            if key in found:
                continue
            if key == (namespace, name):
                refused.append(
                    f"spec.promotion.after[{i}]: names this Rollout itself; an upstream is "
                    "another Rollout that runs a revision first"
                )
                continue
            try:
                body = cluster.read_rollout(*key)
            except Forbidden:
                refused.append(
                    f"spec.promotion.after[{i}]: the operator may not read Rollouts in "
                    f"namespace {upstream.namespace} (a namespace-scoped operator reads only "
                    "its watched namespaces: add it to watchNamespaces, or name an upstream "
                    "it watches)"
                )
                continue
            found[key] = upstream_read(*key, body)
        return found, refused

    return await asyncio.to_thread(read)


__all__ = ["needs_upstreams", "read_upstreams", "upstream_read"]
