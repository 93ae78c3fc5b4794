"""The pure side of ``set image``, ``undo`` and ``restart``: the patches they write, the
revision ``undo`` goes back to, and the template it recovers from a Deployment as
kube-apiserver stores it (defaults filled in)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.cli.revisions import (
    RESTARTED_AT,
    Candidate,
    TemplateError,
    parse_image_pair,
    recover_template,
    restart_patch,
    set_images,
    template_patch,
    undo_target,
)
from rollwise.core.observations import revision_of
from tests.unit.cli import workload_builders as w

# A template with probes, env from a field, volumes, an init container and an image without
# a tag, as a user wrote it, and as kube-apiserver v1.37.2 returned it from a Deployment
# (read back from the lab cluster; the revision label added as the operator adds it).
RICH: dict[str, Any] = {
    "metadata": {"labels": {"app": "rich"}, "annotations": {"team": "payments"}},
    "spec": {
        "initContainers": [
            {"name": "migrate", "image": "ghcr.io/acme/migrate:2", "command": ["migrate", "up"]}
        ],
        "containers": [
            {
                "name": "web",
                "image": "ghcr.io/acme/web:latest",
                "ports": [
                    {"containerPort": 8080, "name": "http"},
                    {"containerPort": 9090, "protocol": "UDP"},
                ],
                "env": [
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MODE", "value": "fast"},
                ],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}],
            },
            {"name": "sidecar", "image": "busybox", "args": ["sleep", "3600"]},
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": "web-config"}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "token", "secret": {"secretName": "tok"}},
        ],
        "terminationGracePeriodSeconds": 30,
    },
}
RICH_STORED = json.loads(
    '{"metadata": {"annotations": {"team": "payments"}, "labels": {"app": "rich", '
    '"rollwise.dev/revision": "REV"}}, "spec": {"containers": [{"env": [{"name": "POD", '
    '"valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}, {"name": '
    '"MODE", "value": "fast"}], "image": "ghcr.io/acme/web:latest", "imagePullPolicy": '
    '"IfNotPresent", "livenessProbe": {"failureThreshold": 3, "periodSeconds": 5, '
    '"successThreshold": 1, "tcpSocket": {"port": 8080}, "timeoutSeconds": 1}, "name": "web", '
    '"ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": '
    '9090, "protocol": "UDP"}], "readinessProbe": {"failureThreshold": 3, "httpGet": {"path": '
    '"/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "successThreshold": 1, '
    '"timeoutSeconds": 1}, "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}, '
    '"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", '
    '"volumeMounts": [{"mountPath": "/etc/web", "name": "config"}]}, {"args": ["sleep", '
    '"3600"], "image": "busybox", "imagePullPolicy": "Always", "name": "sidecar", "resources": '
    '{}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}], '
    '"dnsPolicy": "ClusterFirst", "initContainers": [{"command": ["migrate", "up"], "image": '
    '"ghcr.io/acme/migrate:2", "imagePullPolicy": "IfNotPresent", "name": "migrate", '
    '"resources": {}, "terminationMessagePath": "/dev/termination-log", '
    '"terminationMessagePolicy": "File"}], "restartPolicy": "Always", "schedulerName": '
    '"default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30, "volumes": '
    '[{"configMap": {"defaultMode": 420, "name": "web-config"}, "name": "config"}, {"emptyDir": '
    '{}, "name": "tmp"}, {"name": "token", "secret": {"defaultMode": 420, "secretName": '
    '"tok"}}]}}'.replace("REV", revision_of(RICH))
)


def with_restart(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    out["metadata"].setdefault("annotations", {})[RESTARTED_AT] = "2026-11-22T10:00:00Z"
    return out


def explicit_defaults() -> dict[str, Any]:
    """A template whose author wrote some of the defaults out (as ``kubectl get -o yaml``
    shows them)."""
    out = w.template()
    out["spec"]["containers"][0].update(imagePullPolicy="IfNotPresent", resources={})
    out["spec"]["terminationGracePeriodSeconds"] = 30
    return out


@pytest.mark.parametrize(
    ("original", "stored"),
    [
        pytest.param(w.STABLE_TEMPLATE, w.defaulted(w.STABLE_TEMPLATE, w.STABLE), id="simple"),
        pytest.param(RICH, RICH_STORED, id="probes-env-volumes-init-latest-tag"),
        pytest.param(
            explicit_defaults(),
            w.defaulted(explicit_defaults(), revision_of(explicit_defaults())),
            id="some-defaults-written-by-the-user",
        ),
        pytest.param(
            w.STABLE_TEMPLATE,
            with_restart(w.defaulted(w.STABLE_TEMPLATE, w.STABLE)),
            id="restarted-by-the-plugin",
        ),
    ],
)
def test_recovered_template_is_the_revision_it_came_from(
    original: dict[str, Any], stored: dict[str, Any]
) -> None:
    revision = revision_of(original)
    assert revision_of(stored) != revision  # as stored, it would be a new revision
    recovered, exact = recover_template(stored, revision)
    assert exact
    assert recovered == original
    assert revision_of(recovered) == revision


def test_a_template_the_server_rewrote_otherwise_is_not_claimed_exact() -> None:
    """A quantity written ``0.5`` comes back ``500m``: no removal of defaults gives the
    revision back; the template without defaults is returned, flagged not exact."""
    original = w.template()
    original["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 0.5}}
    stored = w.defaulted(original, revision_of(original))
    stored["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m"}}
    recovered, exact = recover_template(stored, revision_of(original))
    assert not exact
    assert "rollwise.dev/revision" not in recovered["metadata"]["labels"]
    assert "terminationMessagePath" not in recovered["spec"]["containers"][0]
    assert recovered["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m"}}


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        pytest.param("app=ghcr.io/acme/web:1.2", ("app", "ghcr.io/acme/web:1.2"), id="plain"),
        pytest.param("*=busybox", ("*", "busybox"), id="every-container"),
        pytest.param("app=reg:5000/web@sha256:ab", ("app", "reg:5000/web@sha256:ab"), id="digest"),
        pytest.param("app=a=b", ("app", "a=b"), id="first-equals-splits"),
    ],
)
def test_parse_image_pair(text: str, pair: tuple[str, str]) -> None:
    assert parse_image_pair(text) == pair


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ghcr.io/acme/web:1.2", id="no-container"),
        pytest.param("=web:1", id="empty-container"),
        pytest.param("app=", id="empty-image"),
        pytest.param("app=web 1", id="space"),
    ],
)
def test_bad_image_pairs(text: str) -> None:
    with pytest.raises(TemplateError, match="CONTAINER=IMAGE"):
        parse_image_pair(text)


def test_set_images_guards_each_replacement_with_tests() -> None:
    template = copy.deepcopy(RICH)
    ops, changes, after = set_images(template, [("sidecar", "busybox:1.37"), ("migrate", "m:3")])
    assert ops == [
        {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "sidecar"},
        {"op": "test", "path": "/spec/template/spec/containers/1/image", "value": "busybox"},
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/1/image",
            "value": "busybox:1.37",
        },
        {"op": "test", "path": "/spec/template/spec/initContainers/0/name", "value": "migrate"},
        {
            "op": "test",
            "path": "/spec/template/spec/initContainers/0/image",
            "value": "ghcr.io/acme/migrate:2",
        },
        {"op": "replace", "path": "/spec/template/spec/initContainers/0/image", "value": "m:3"},
    ]
    assert [(c.container, c.before, c.after) for c in changes] == [
        ("sidecar", "busybox", "busybox:1.37"),
        ("init:migrate", "ghcr.io/acme/migrate:2", "m:3"),
    ]
    assert after["spec"]["containers"][1]["image"] == "busybox:1.37"
    assert template == RICH  # the input is left alone


def test_set_images_star_and_no_change() -> None:
    ops, changes, _ = set_images(w.STABLE_TEMPLATE, [("*", "busybox:1.36")])
    assert [c.container for c in changes] == ["app"]  # the sidecar runs it already
    assert len(ops) == 3
    assert set_images(w.STABLE_TEMPLATE, [("app", "ghcr.io/acme/web:1.0")])[0] == []


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        pytest.param(
            [("web", "x:1")],
            'the template has no container "web" (containers: app, sidecar)',
            id="unknown",
        ),
        pytest.param(
            [("app", "x:1"), ("app", "x:2")], 'container "app" is named twice', id="twice"
        ),
    ],
)
def test_set_images_errors(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        set_images(w.STABLE_TEMPLATE, pairs)
    assert str(raised.value) == message


def _candidates() -> list[Candidate]:
    return [
        Candidate(w.CANARY, w.deployment(w.CANARY, w.CANARY_TEMPLATE, age=60), ("canary",)),
        Candidate(w.STABLE, w.deployment(w.STABLE, w.STABLE_TEMPLATE, age=600), ("stable",)),
        Candidate(w.OLD, w.deployment(w.OLD, w.OLD_TEMPLATE, age=6000), ("retired",)),
    ]


@pytest.mark.parametrize(
    ("current", "stable", "rolled_back", "to", "expected"),
    [
        pytest.param(w.CANARY, w.STABLE, None, None, w.STABLE, id="canary-runs-back-to-stable"),
        pytest.param(w.CANARY, w.STABLE, w.CANARY, None, w.STABLE, id="rolled-back-to-stable"),
        pytest.param(w.STABLE, w.STABLE, None, None, w.CANARY, id="stable-to-newest-other"),
        pytest.param(w.STABLE, w.STABLE, w.CANARY, None, w.OLD, id="skips-the-rolled-back"),
        pytest.param(w.CANARY, w.STABLE, None, w.OLD[:4], w.OLD, id="prefix"),
        pytest.param(w.CANARY, None, None, None, w.STABLE, id="no-status-newest-other"),
    ],
)
def test_undo_target(
    current: str, stable: str | None, rolled_back: str | None, to: str | None, expected: str
) -> None:
    target = undo_target(
        _candidates(),
        current=current,
        stable=stable,
        rolled_back=rolled_back,
        to_revision=to,
        name="web",
        delay=600,
    )
    assert target.revision == expected


def test_undo_target_when_there_is_nothing_to_go_back_to() -> None:
    only = [
        Candidate(
            w.STABLE, w.deployment(w.STABLE, w.STABLE_TEMPLATE), ("stable", "current template")
        )
    ]
    with pytest.raises(TemplateError) as raised:
        undo_target(
            only,
            current=w.STABLE,
            stable=w.STABLE,
            rolled_back=None,
            to_revision=None,
            name="web",
            delay=600,
        )
    assert str(raised.value) == (
        'rollout "web" has no earlier revision to go back to (revisions with a Deployment: '
        f"{w.STABLE} (stable, current template)); a promoted revision's predecessor keeps its "
        "Deployment for scaleDownDelaySeconds (600s) after the promotion, then it is deleted"
    )


def test_undo_target_unknown_and_ambiguous_revisions() -> None:
    with pytest.raises(TemplateError, match=r'has no revision "ffff" to go back to \(revisions'):
        undo_target(
            _candidates(),
            current=w.CANARY,
            stable=w.STABLE,
            rolled_back=None,
            to_revision="ffff",
            name="web",
            delay=30,
        )
    twins = [
        Candidate("abc123", {}, ()),
        Candidate("abc456", {}, ()),
    ]
    with pytest.raises(TemplateError, match='"abc" is ambiguous: it matches abc123, abc456'):
        undo_target(
            twins,
            current="x",
            stable=None,
            rolled_back=None,
            to_revision="abc",
            name="web",
            delay=30,
        )


def test_restart_and_template_patches() -> None:
    assert restart_patch(datetime(2026, 11, 22, 10, 0, 5, 123, tzinfo=UTC)) == {
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-11-22T10:00:05Z"}}}}
    }
    assert template_patch(w.STABLE_TEMPLATE, "42") == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "replace", "path": "/spec/template", "value": w.STABLE_TEMPLATE},
    ]
