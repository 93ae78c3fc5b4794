"""The policy snapshot digest (the documented canonical JSON), the gate's verdicts and the CLI
that prints the digest of a ConfigMap manifest."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollwise.adapters.gates.policy import (
    NotAConfigMap,
    check_policy,
    main,
    manifest_digests,
    policy_digest,
)
from rollwise.core.modelrelease.status import GateStatus

REPO = Path(__file__).resolve().parents[3]

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: rollwise-policy
  namespace: rollwise-system
data:
  max-canary-weight: "50"
  required-roles: |
    - security
    - product
  owner: "équipe-ml"
"""


def test_digest_is_sha256_of_canonical_json() -> None:
    data = {"b": "2", "a": "1", "é": "ü"}
    canonical = '{"a":"1","b":"2","\\u00e9":"\\u00fc"}'
    assert policy_digest(data) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert policy_digest(None) == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    assert policy_digest({"a": "1", "b": "2"}) == policy_digest({"b": "2", "a": "1"})
    assert policy_digest({"a": "1"}) != policy_digest({"a": "1 "})


def test_check_policy_verdicts() -> None:
    configmap = {"metadata": {"name": "p"}, "data": {"k": "v"}}
    digest = policy_digest({"k": "v"})
    passed = check_policy(configmap, digest, "ops/p")
    assert passed.status is GateStatus.PASSED
    assert digest[:19] in passed.message
    other = policy_digest({"k": "w"})
    failed = check_policy(configmap, other, "ops/p")
    assert failed.status is GateStatus.FAILED
    assert failed.message == (
        f"policy digest mismatch: spec.policyDigest is {other[:19]}, the cluster's policy "
        f"snapshot ops/p is {digest[:19]}"
    )
    missing = check_policy(None, digest, "ops/p")
    assert missing.status is GateStatus.PENDING
    assert "ops/p not found" in missing.message


def test_manifest_digests_yaml_list_and_errors() -> None:
    ((digest, where),) = manifest_digests(MANIFEST)
    assert where == "rollwise-system/rollwise-policy"
    assert digest == policy_digest(
        {
            "max-canary-weight": "50",
            "required-roles": "- security\n- product\n",
            "owner": "équipe-ml",
        }
    )
    as_list = '{"kind": "List", "items": [{"kind": "ConfigMap", "metadata": {"name": "a"}}]}'
    assert manifest_digests(as_list) == [(policy_digest({}), "default/a")]
    assert manifest_digests("kind: Secret\n") == []
    with pytest.raises(NotAConfigMap, match=r"data\['n'\] is not a string"):
        manifest_digests("kind: ConfigMap\nmetadata: {name: x}\ndata: {n: 5}\n")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(MANIFEST + "---\n" + MANIFEST.replace("rollwise-policy", "second"))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    digest = manifest_digests(MANIFEST)[0][0]
    assert out == [
        f"{digest}  rollwise-system/rollwise-policy",
        f"{digest}  rollwise-system/second",
    ]
    empty = tmp_path / "empty.yaml"
    empty.write_text("kind: Secret\n")
    assert main([str(empty)]) == 1
    assert main([str(tmp_path / "missing.yaml")]) == 1
    assert main([]) == 2


def test_cli_as_module_reads_stdin() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rollwise.adapters.gates.policy", "-"],
        input=MANIFEST,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "operator")},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.split()[0] == manifest_digests(MANIFEST)[0][0]
