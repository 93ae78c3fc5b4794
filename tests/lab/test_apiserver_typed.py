"""Typed decoding of built-in kinds: the emulator reports the fields a kind does not have.

``typed.unknown_fields`` is what a write runs (it builds nothing); ``typed.prune`` is the
reference that also builds the pruned object. Both must name the same paths, in order.
"""

from __future__ import annotations

from typing import Any

import pytest

from hack.lab.kube import typed


def deployment(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a", "labels": {"app": "a"}, "annotations": {"x": "y"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {
                "metadata": {"labels": {"app": "a"}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "i", "ports": [{"containerPort": 80}]},
                        {"name": "d", "image": "j", "env": [{"name": "K", "value": "V"}]},
                    ]
                },
            },
        },
        "status": {"readyReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]},
    }
    for path, value in extra.items():
        node = body
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(deployment(), [], id="clean"),
        pytest.param(deployment(metadata__bogus=1), ["metadata.bogus"], id="metadata"),
        pytest.param(
            deployment(spec__template__spec__containers__1__env__0__typo=True),
            ["spec.template.spec.containers[1].env[0].typo"],
            id="inside-lists",
        ),
        pytest.param(
            deployment(spec__strategy={"rollingUpdate": {"maxSurge": 1, "nope": 2}}, zzz=3),
            ["spec.strategy.rollingUpdate.nope", "zzz"],
            id="several-in-order",
        ),
        pytest.param(
            deployment(metadata__labels={"a": {"not": "a string"}}),
            [],
            id="map-values-are-not-models",
        ),
    ],
)
def test_unknown_fields_match_what_pruning_drops(body: dict[str, Any], expected: list[str]) -> None:
    found: list[str] = []
    typed.unknown_fields(body, "V1Deployment", found)
    pruned: list[str] = []
    typed.prune(body, "V1Deployment", pruned)
    assert found == expected
    assert found == pruned
