"""The API emulator driven by the real kubectl (v1.32), as users and the e2e tests drive it.

Covers apply with server-side validation (a CRD, then custom resources; an invalid one is
refused with a readable error), get -o json / -w / -l, wait for a CRD condition, explain,
describe with events, patch (merge, json, strategic, --subresource=status), replace with a
stale resourceVersion, delete with a finalizer, scale, events by field selector, and bearer
tokens (over https: kubectl sends no token over plain http).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hack.lab.kube.auth import TokenEntry, TokenFileAuthenticator
from hack.lab.kube.server import BackgroundAPIServer
from hack.lab.testing.kube_fixtures import (
    KUBECTL,
    WIDGET_CRD,
    Kubectl,
    make_kubectl,
    manifest,
)

pytestmark = pytest.mark.lab

ROLLOUT_CRD = Path(__file__).resolve().parents[2] / "crds" / "rollouts.rollwise.dev.yaml"


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lab.rollwise.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec or {"color": "red"},
    }


@pytest.fixture(scope="module")
def widget_crd_applied(kubectl: Kubectl) -> None:
    out = kubectl("apply", "-f", "-", input=manifest(WIDGET_CRD), check=True)
    assert "widgets.lab.rollwise.dev" in out.stdout
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/widgets.lab.rollwise.dev",
        "--timeout=10s",
        check=True,
    )


def test_version_and_api_resources(kubectl: Kubectl) -> None:
    out = kubectl("version", "-o", "json", check=True)
    assert json.loads(out.stdout)["serverVersion"]["minor"] == "32"
    res = kubectl("api-resources", check=True).stdout
    for line in ("deployments", "customresourcedefinitions", "leases", "events"):
        assert line in res


@pytest.mark.usefixtures("widget_crd_applied")
def test_apply_crd_wait_established_and_custom_resources(kubectl: Kubectl, namespace: str) -> None:
    crd = json.loads(
        kubectl("get", "crd", "widgets.lab.rollwise.dev", "-o", "json", check=True).stdout
    )
    established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
    assert established
    assert established[0]["status"] == "True"
    created = kubectl(
        "apply", "-f", "-", input=manifest(widget("w1")), namespace=namespace, check=True
    )
    assert "widget.lab.rollwise.dev/w1 created" in created.stdout
    again = kubectl(
        "apply",
        "-f",
        "-",
        input=manifest(widget("w1", color="blue")),
        namespace=namespace,
        check=True,
    )
    assert "widget.lab.rollwise.dev/w1 configured" in again.stdout
    same = kubectl(
        "apply",
        "-f",
        "-",
        input=manifest(widget("w1", color="blue")),
        namespace=namespace,
        check=True,
    )
    assert "unchanged" in same.stdout
    obj = json.loads(
        kubectl("get", "widget", "w1", "-o", "json", namespace=namespace, check=True).stdout
    )
    assert obj["spec"] == {"color": "blue", "replicas": 1}
    assert obj["metadata"]["generation"] == 2
    table = kubectl("get", "wg", namespace=namespace, check=True).stdout
    assert table.split("\n")[0].split() == ["NAME", "COLOR", "PHASE"]
    assert table.split("\n")[1].split() == ["w1", "blue"]


@pytest.mark.usefixtures("widget_crd_applied")
def test_apply_refuses_invalid_and_unknown_fields(kubectl: Kubectl, namespace: str) -> None:
    bad = kubectl(
        "apply", "-f", "-", input=manifest(widget("bad", color="pink")), namespace=namespace
    )
    assert bad.returncode != 0
    assert 'The Widget "bad" is invalid' in bad.stderr
    assert 'spec.color: Unsupported value: "pink"' in bad.stderr
    unknown = kubectl(
        "apply", "-f", "-", input=manifest(widget("unk", color="red", size=3)), namespace=namespace
    )
    assert unknown.returncode != 0
    assert 'unknown field "spec.size"' in unknown.stderr
    ignored = kubectl(
        "apply",
        "--validate=false",
        "-f",
        "-",
        input=manifest(widget("unk", color="red", size=3)),
        namespace=namespace,
    )
    assert ignored.returncode == 0, ignored.stderr
    obj = json.loads(kubectl("get", "widget", "unk", "-o", "json", namespace=namespace).stdout)
    assert "size" not in obj["spec"], "unknown fields are pruned"


def test_real_rollout_crd_applies_and_explains(kubectl: Kubectl) -> None:
    if not ROLLOUT_CRD.exists():
        pytest.skip(f"{ROLLOUT_CRD} is not written yet")
    kubectl("apply", "-f", str(ROLLOUT_CRD), check=True)
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/rollouts.rollwise.dev",
        "--timeout=10s",
        check=True,
    )
    out = kubectl("explain", "rollouts.spec", check=True).stdout
    assert "KIND:       Rollout" in out
    assert "DESCRIPTION:" in out
    assert "FIELDS:" in out


@pytest.mark.usefixtures("widget_crd_applied")
def test_explain_shows_crd_descriptions(kubectl: Kubectl) -> None:
    out = kubectl("explain", "widgets.spec", check=True).stdout
    assert "What the widget should be." in out
    assert "The colour of the widget." in out
    assert "replicas\t<integer>" in out


@pytest.mark.usefixtures("widget_crd_applied")
def test_get_watch_prints_new_objects(
    kubeconfig: Path, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    cmd = [
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(tmp_path / "cache"),
        "-n",
        namespace,
        "get",
        "widgets",
        "-w",
        "--request-timeout=10s",
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            time.sleep(1.5)
            kubectl(
                "apply",
                "-f",
                "-",
                input=manifest(widget("watched")),
                namespace=namespace,
                check=True,
            )
            kubectl(
                "patch",
                "widget",
                "watched",
                "--type",
                "merge",
                "--subresource",
                "status",
                "-p",
                '{"status":{"phase":"Ready"}}',
                namespace=namespace,
                check=True,
            )
            time.sleep(1.5)
        finally:
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=10)
    lines = [line.split() for line in stdout.splitlines() if line.strip()]
    assert ["watched", "red"] in lines, (stdout, stderr)
    assert ["watched", "red", "Ready"] in lines, (stdout, stderr)


@pytest.mark.usefixtures("widget_crd_applied")
def test_patch_types_and_status_subresource(kubectl: Kubectl, namespace: str) -> None:
    kubectl(
        "apply",
        "-f",
        "-",
        input=manifest(widget("p", color="red", items=["a"])),
        namespace=namespace,
        check=True,
    )
    kubectl(
        "patch",
        "widget",
        "p",
        "--type",
        "merge",
        "-p",
        '{"spec":{"color":"green"}}',
        namespace=namespace,
        check=True,
    )
    kubectl(
        "patch",
        "widget",
        "p",
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/spec/items/-","value":"b"}]',
        namespace=namespace,
        check=True,
    )
    ignored = kubectl(
        "patch",
        "widget",
        "p",
        "--type",
        "merge",
        "-p",
        '{"status":{"phase":"X"}}',
        namespace=namespace,
    )
    assert "no change" in ignored.stdout, "status is not written through the main resource"
    kubectl(
        "patch",
        "widget",
        "p",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        '{"status":{"phase":"Ready"}}',
        namespace=namespace,
        check=True,
    )
    failed = kubectl(
        "patch",
        "widget",
        "p",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/color","value":"red"}]',
        namespace=namespace,
    )
    assert failed.returncode != 0
    assert "test failed" in failed.stderr
    obj = json.loads(kubectl("get", "widget", "p", "-o", "json", namespace=namespace).stdout)
    assert obj["spec"]["color"] == "green"
    assert obj["spec"]["items"] == ["a", "b"]
    assert obj["status"] == {"phase": "Ready"}
    assert obj["metadata"]["generation"] == 3


def test_strategic_patch_and_scale_on_deployments(kubectl: Kubectl, namespace: str) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1"}]},
            },
        },
    }
    kubectl("apply", "-f", "-", input=manifest(deploy), namespace=namespace, check=True)
    kubectl(
        "patch",
        "deployment",
        "web",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"web:2"}]}}}}',
        namespace=namespace,
        check=True,
    )
    kubectl("scale", "deployment/web", "--replicas=3", namespace=namespace, check=True)
    deploy["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    kubectl("apply", "-f", "-", input=manifest(deploy), namespace=namespace, check=True)
    obj = json.loads(kubectl("get", "deploy", "web", "-o", "json", namespace=namespace).stdout)
    container = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in container] == ["app"]
    assert container[0]["image"] == "web:1", "apply restores the image it owns"
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "front"}


def test_apply_refuses_typos_in_built_in_kinds(kubectl: Kubectl, namespace: str) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "typo"},
        "dataa": {"k": "v"},
    }
    out = kubectl("apply", "-f", "-", input=manifest(cm), namespace=namespace)
    assert out.returncode != 0
    assert 'strict decoding error: unknown field "dataa"' in out.stderr


def test_replace_with_stale_resource_version_conflicts(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"v": "1"}}
    kubectl("create", "-f", "-", input=manifest(cm), namespace=namespace, check=True)
    current = json.loads(kubectl("get", "cm", "cfg", "-o", "json", namespace=namespace).stdout)
    kubectl(
        "patch",
        "cm",
        "cfg",
        "--type",
        "merge",
        "-p",
        '{"data":{"v":"2"}}',
        namespace=namespace,
        check=True,
    )
    current["data"] = {"v": "3"}
    path = tmp_path / "stale.json"
    path.write_text(json.dumps(current))
    out = kubectl("replace", "-f", str(path), namespace=namespace)
    assert out.returncode != 0
    assert "Conflict" in out.stderr
    assert "the object has been modified" in out.stderr


@pytest.mark.usefixtures("widget_crd_applied")
def test_delete_waits_for_finalizers(kubectl: Kubectl, namespace: str) -> None:
    body = widget("fin")
    body["metadata"]["finalizers"] = ["lab.rollwise.dev/hold"]
    kubectl("apply", "-f", "-", input=manifest(body), namespace=namespace, check=True)
    out = kubectl("delete", "widget", "fin", "--wait=false", namespace=namespace, check=True)
    assert 'widget.lab.rollwise.dev "fin" deleted' in out.stdout
    obj = json.loads(
        kubectl("get", "widget", "fin", "-o", "json", namespace=namespace, check=True).stdout
    )
    assert obj["metadata"]["deletionTimestamp"]
    kubectl(
        "patch",
        "widget",
        "fin",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
        namespace=namespace,
        check=True,
    )
    gone = kubectl("get", "widget", "fin", namespace=namespace)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


@pytest.mark.usefixtures("widget_crd_applied")
def test_events_by_field_selector_and_describe(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=manifest(widget("ev")), namespace=namespace, check=True)
    obj = json.loads(kubectl("get", "widget", "ev", "-o", "json", namespace=namespace).stdout)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "ev.1"},
        "involvedObject": {
            "apiVersion": "lab.rollwise.dev/v1",
            "kind": "Widget",
            "name": "ev",
            "namespace": namespace,
            "uid": obj["metadata"]["uid"],
        },
        "reason": "StepAdvanced",
        "message": "weight 25%",
        "type": "Normal",
        "firstTimestamp": obj["metadata"]["creationTimestamp"],
        "lastTimestamp": obj["metadata"]["creationTimestamp"],
        "count": 1,
        "source": {"component": "rollwise"},
    }
    kubectl("create", "-f", "-", input=manifest(event), namespace=namespace, check=True)
    found = kubectl(
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=ev",
        "-o",
        "json",
        namespace=namespace,
        check=True,
    )
    assert [e["reason"] for e in json.loads(found.stdout)["items"]] == ["StepAdvanced"]
    none = kubectl(
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=other",
        namespace=namespace,
        check=True,
    )
    assert "No resources found" in none.stderr
    described = kubectl("describe", "widget", "ev", namespace=namespace, check=True).stdout
    assert "Name:" in described
    assert "ev" in described
    assert "StepAdvanced" in described
    assert "weight 25%" in described


def test_label_selectors_with_kubectl(kubectl: Kubectl, namespace: str) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "labels": labels}}
        for n, labels in [("a", {"tier": "web"}), ("b", {"tier": "db"}), ("c", {})]
    ]
    kubectl("apply", "-f", "-", input=manifest(*docs), namespace=namespace, check=True)

    def names(*selector: str) -> list[str]:
        out = kubectl("get", "cm", *selector, "-o", "name", namespace=namespace, check=True)
        return out.stdout.split()

    table = kubectl("get", "cm", "-l", "tier", namespace=namespace, check=True).stdout
    assert table.splitlines()[0].split() == ["NAME", "DATA", "AGE"]
    assert names("-l", "tier=web") == ["configmap/a"]
    assert names("-l", "tier in (web,db)") == ["configmap/a", "configmap/b"]
    assert names("-l", "!tier") == ["configmap/c"]


def test_kubectl_authenticates_with_bearer_tokens_over_tls(tmp_path: Path) -> None:
    auth = TokenFileAuthenticator([TokenEntry("s3cret", "alice", "1", ("dev",))])
    with BackgroundAPIServer(authenticator=auth) as server:
        # kubectl does not send tokens over plain http, so a server with tokens serves https.
        assert server.url.startswith("https://127.0.0.1:")
        good = make_kubectl(
            server.write_kubeconfig(tmp_path / "good", token="s3cret"), tmp_path / "c1"
        )
        assert good("get", "ns", "default", "-o", "name").stdout.strip() == "namespace/default"
        bad = make_kubectl(
            server.write_kubeconfig(tmp_path / "bad", token="wrong"), tmp_path / "c2"
        )
        denied = bad("get", "ns", "default")
        assert denied.returncode != 0
        assert "You must be logged in to the server" in denied.stderr


def test_apply_of_an_unserved_kind_fails_as_on_a_real_cluster(kubectl: Kubectl) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {},
    }
    out = kubectl("apply", "-f", "-", input=manifest(route))
    assert out.returncode != 0
    assert 'no matches for kind "HTTPRoute"' in out.stderr


def test_protobuf_bodies_are_refused_readably_and_manifests_work(kubectl: Kubectl) -> None:
    # kubectl's typed generators send protobuf for built-in kinds; the lab speaks JSON only.
    generated = kubectl("create", "namespace", "pb-generated")
    assert generated.returncode != 0
    assert "UnsupportedMediaType" in generated.stderr
    assert "application/vnd.kubernetes.protobuf" in generated.stderr
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pb-manifest"}}
    created = kubectl("create", "-f", "-", input=json.dumps(namespace), check=True)
    assert "namespace/pb-manifest created" in created.stdout
    assert kubectl("get", "namespace", "pb-generated").returncode != 0
