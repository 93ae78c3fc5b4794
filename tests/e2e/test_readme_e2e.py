"""The README's "Using it" and "Model releases" commands run as written against the lab.

The shell blocks are read from README.md and each command line runs with ``bash -c``, from
the repository's root, as a person in a terminal runs it: ``KUBECONFIG`` is theirs, with the
test's namespace as the context's namespace (the commands name none), the plugin and the
cluster's kubectl on PATH. Who runs what: alice creates and watches (the release's creator),
a line ending in "as a security approver" or "as a product approver" runs as bob or carol
(groups ``sec-team`` and ``pm``, mapped to those roles), and ``waive`` runs as dave (anyone but
the creator). A ``-w`` command runs until it has shown its table, then is stopped, as Ctrl-C
would; every other command must exit 0.

The one line that does not run as written is the README's ``helm install``: in the lab the
chart is installed by the ``start_operator`` fixture with the values of an operator run outside
the cluster (``deployment.enabled=false``, ``webhook.url``: kwok's pods run no containers), as
``python -m hack.lab operator`` does; the operator then runs as the chart's ServiceAccount with
the lab's Prometheus as its default, which the examples' queries rely on (they name no address).

The examples' own timings are kept (pauses of minutes), so each section takes several minutes.
One thing of the examples depends on the day: ``examples/modelrelease-template`` freezes
promotions from Friday 18:00 (Europe/Paris) to Monday 09:00. When that window is open (or
opens within the next half hour) the commands run from a copy of ``examples/`` without the
window (:func:`commands_directory`), so the test does not depend on the day it runs; on any
other day they run from the repository itself.
The data plane is the lab's: traffic through the example's HTTPRoute, and for the model a
client Service over its pods.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import grant_namespace, kubectl_binary
from rollwise.adapters.gates.freeze import open_window
from rollwise.core.spec_release import FreezeWindow
from tests.e2e.support import OPERATOR, Cluster, StartOperator, eventually

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(1500),
    pytest.mark.lab_only(
        "runs the operator with its admission webhook and acts as the people the lab cluster "
        "authenticates by token"
    ),
]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
ROLE_GROUPS = "security=sec-team;product=pm"
PEOPLE = ["alice", "bob", "carol", "dave"]
CREATOR = "alice"
#: The example's HTTPRoute is the team's to write too.
ROUTE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["gateway.networking.k8s.io"],
        "resources": ["httproutes"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    }
]
#: Watches (``-w``) run this long, then are stopped as Ctrl-C would.
WATCH_SECONDS = 4.0
#: A command's bound (``kubectl wait`` carries its own ``--timeout``).
COMMAND_SECONDS = 60.0


def section(text: str, heading: str, *, stop_at_subsections: bool = False) -> str:
    """The Markdown of ``heading`` up to the next heading of the same or a higher level
    (lines in code blocks are not headings)."""
    level = len(heading.split(" ", 1)[0])
    lines = text.splitlines()
    start = lines.index(heading) + 1
    fenced = False
    for index in range(start, len(lines)):
        line = lines[index]
        if line.startswith("```"):
            fenced = not fenced
        found = re.match(r"^(#+) ", line)
        deepest = len(found.group(1)) if found else 0
        if not fenced and found and (deepest <= level or stop_at_subsections):
            return "\n".join(lines[start:index]) + "\n"
    return "\n".join(lines[start:]) + "\n"


def bash_commands(markdown: str) -> list[str]:
    """The commands of the ``bash`` blocks, one per logical line (``\\`` continues a line;
    comment lines are dropped)."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, re.DOTALL):
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            commands.append(pending + line)
            pending = ""
    return commands


def using_it() -> list[str]:
    # "Using it" up to its first subsection: the install and the Rollout commands.
    return bash_commands(section(README.read_text(), "## Using it", stop_at_subsections=True))


def model_releases() -> list[str]:
    return bash_commands(section(README.read_text(), "### Model releases"))


#: How long the model's part may run after it starts, for the freeze-window check.
RUN_AHEAD = timedelta(minutes=30)
FROZEN_EXAMPLE = Path("examples") / "modelrelease-template" / "modelrelease.yaml"


def frozen_at(now: datetime) -> bool:
    """Whether a freeze window of the model example is open at ``now`` or opens before
    ``now + RUN_AHEAD`` (checked every minute, with the operator's own window logic)."""
    doc = yaml.safe_load((REPO / FROZEN_EXAMPLE).read_text())
    raw = (doc["spec"].get("gates") or {}).get("freezeWindows") or []
    windows = [FreezeWindow.model_validate(w) for w in raw]
    steps = int(RUN_AHEAD.total_seconds() // 60) + 1
    return any(
        open_window(w, now + timedelta(minutes=m)) is not None
        for w in windows
        for m in range(steps)
    )


def commands_directory(copy: Path, now: datetime) -> Path:
    """Where the README's commands run: the repository, or, while the model example's freeze
    window is open, ``copy``, holding ``examples/`` with that window left out."""
    if not frozen_at(now):
        return REPO
    shutil.copytree(REPO / "examples", copy / "examples")
    path = copy / FROZEN_EXAMPLE
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["gates"].pop("freezeWindows")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


def person_for(command: str) -> str:
    if command.rstrip().endswith("# as a security approver"):
        return "bob"
    if command.rstrip().endswith("# as a product approver"):
        return "carol"
    if " waive " in command:
        return "dave"
    return CREATOR


class Terminal:
    """Runs README lines as the people of the test's namespace."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.cwd = commands_directory(workdir / "repo", datetime.now(UTC))
        self.kubeconfigs: dict[str, Path] = {}
        for person in PEOPLE:
            own = workdir / f"{person}.kubeconfig"
            own.write_text(cluster.the_lab.kubeconfig_of(person).read_text())
            kubectl = str(kubectl_binary())
            context = ["config", "set-context", "--current", f"--namespace={cluster.namespace}"]
            subprocess.run(
                [kubectl, *context, f"--kubeconfig={own}"],
                check=True,
                capture_output=True,
                timeout=30,
            )
            self.kubeconfigs[person] = own
        self.transcript: list[str] = []

    def env(self, person: str) -> dict[str, str]:
        path = [str(OPERATOR.parent), str(kubectl_binary().parent), os.environ.get("PATH", "")]
        return {
            **os.environ,
            "PATH": os.pathsep.join(path),
            "KUBECONFIG": str(self.kubeconfigs[person]),
            "HOME": str(self.workdir),
            "NO_COLOR": "1",
        }

    def run(self, command: str) -> str:
        person = person_for(command)
        self.transcript.append(f"[{person}]$ {command}")
        if re.search(r"\s-w(\s|$)", command):
            return self._watch(command, person)
        timeout = COMMAND_SECONDS
        if found := re.search(r"--timeout=(\d+)m", command):
            timeout = int(found.group(1)) * 60 + 30
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env(person),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.transcript.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, "\n".join(self.transcript)
        return proc.stdout

    def _watch(self, command: str, person: str) -> str:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.cwd,
            env=self.env(person),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(WATCH_SECONDS)
        still_running = proc.poll() is None
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
        self.transcript.append(output)
        assert still_running, "\n".join(self.transcript)
        assert output.strip(), "\n".join(self.transcript)
        return output


@pytest.fixture
def terminal(cluster: Cluster, start_operator: StartOperator, tmp_path: Path) -> Terminal:
    """The operator of the test's namespace with its webhook (the README's helm install, as the
    lab installs it), and the people allowed to work in the namespace."""
    grant_namespace(
        cluster.the_lab.running_cluster, cluster.namespace, PEOPLE, extra_rules=ROUTE_RULES
    )
    operator = start_operator("--namespace", cluster.namespace, ROLLWISE_ROLE_GROUPS=ROLE_GROUPS)
    start_operator.wait_webhook(operator)
    return Terminal(cluster, tmp_path)


def test_the_readme_sections_are_found() -> None:
    commands = using_it()
    assert commands[0] == (
        "helm install rollwise charts/rollwise --namespace rollwise-system --create-namespace"
    )
    assert commands[1] == "kubectl apply -f examples/rollout-analysis-template/"
    assert commands[-1].startswith("kubectl wait --for=condition=Ready rollout/demo")
    released = model_releases()
    assert released[0] == "kubectl apply -f examples/modelrelease-template/"
    assert [person_for(c) for c in released].count("bob") == 1
    assert [person_for(c) for c in released].count("carol") == 1


def test_using_it_runs_as_written(cluster: Cluster, terminal: Terminal) -> None:
    commands = using_it()
    assert commands[0].startswith("helm install "), "the install is the fixture's (see above)"
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/demo", rate=50)
    applied, patch, *rest = commands[1:]
    terminal.run(applied)
    eventually(
        lambda: cluster.status().get("phase") == "Healthy",
        timeout=60,
        what="the example's first revision Healthy",
    )
    first = cluster.status()["stableRevision"]
    terminal.run(patch)
    eventually(
        lambda: cluster.status().get("canaryRevision") not in (None, first),
        timeout=30,
        what="the canary of the new image",
    )
    for command in rest:
        terminal.run(command)
    status = cluster.status()
    assert status["phase"] == "Healthy", status
    assert status["stableRevision"] != first, status
    image = cluster.rollout()["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/rollwise/demo-service:1.1.0"
    reasons = cluster.reasons()
    assert "RolloutCompleted" in reasons, reasons
    # Every measurement had data: the queries found the lab's series through the default
    # Prometheus, by namespace and service.
    assert "MeasurementInconclusive" not in reasons, reasons
    assert "MeasurementError" not in reasons, reasons


def _release(cluster: Cluster, name: str) -> dict[str, Any]:
    proc = cluster.k("get", "modelrelease", name, "-o", "json")
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def test_model_releases_run_as_written(cluster: Cluster, terminal: Terminal) -> None:
    commands = model_releases()
    # The model's clients: a Service over every revision of its pods (the data plane).
    client = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fraud-detector"},
        "spec": {
            "selector": {"app": "fraud-detector"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    cluster.k("apply", "-f", "-", input=yaml.safe_dump(client))
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/fraud-detector", rate=50)
    revoke = commands[-1]
    assert " revoke " in revoke
    for command in commands[:-1]:
        terminal.run(command)
    name = "fraud-detector-7"
    release = _release(cluster, name)
    status = release["status"]
    assert status["stage"] == "Production", status
    assert status["phase"] == "Healthy", status
    assert [h["stage"] for h in status["history"]] == [
        "Candidate",
        "Staging",
        "Approved",
        "Production",
    ], status["history"]
    assert status["history"][0]["user"] == CREATOR
    assert {(a["role"], a["user"]) for a in status["approvals"]} == {
        ("security", "bob"),
        ("product", "carol"),
    }
    waivers = json.loads(release["metadata"]["annotations"]["rollwise.dev/waivers"])
    assert [(w["gate"], w["user"]) for w in waivers] == [("artifact-digest", "dave")]
    aliases = cluster.k("get", "configmap", "model-aliases", "-o", "json")
    entry = json.loads(json.loads(aliases.stdout)["data"]["fraud-detector.production"])
    assert entry["version"] == "7", entry

    terminal.run(revoke)
    eventually(
        lambda: _release(cluster, name)["status"].get("stage") == "Revoked",
        timeout=30,
        what="the release Revoked",
    )


@pytest.mark.parametrize(
    ("now", "frozen"),
    [
        pytest.param(datetime(2026, 12, 7, 16, 0, tzinfo=UTC), False, id="monday-afternoon"),
        pytest.param(datetime(2026, 12, 11, 16, 45, tzinfo=UTC), True, id="friday-before-it"),
        pytest.param(datetime(2026, 12, 12, 12, 0, tzinfo=UTC), True, id="saturday"),
        pytest.param(datetime(2026, 12, 14, 7, 59, tzinfo=UTC), True, id="monday-8-59-paris"),
        pytest.param(datetime(2026, 12, 14, 8, 0, tzinfo=UTC), False, id="monday-9-00-paris"),
    ],
)
def test_the_commands_run_from_a_copy_without_the_window_only_while_it_is_open(
    tmp_path: Path, now: datetime, frozen: bool
) -> None:
    where = commands_directory(tmp_path / "repo", now)
    assert (where != REPO) == frozen
    if frozen:
        doc = yaml.safe_load((where / FROZEN_EXAMPLE).read_text())
        assert "freezeWindows" not in doc["spec"]["gates"]
        assert (where / "examples" / "rollout-gateway-api").is_dir()
