"""What the pinned helm (4 and 3) and kubectl print, captured against the local API.

The logic tests (tests/test_deploy.py) answer helm and kubectl from a script; where a parser
reads their output, the script answers with these captured files, so the parsers are tested on
what the real binaries print rather than on JSON written by hand. `python -m tests.capture`
rewrites tests/fixtures/captured/; `test_the_captured_outputs_are_what_the_binaries_print`
(cluster lane) captures again and fails when a pinned binary's output no longer has the shape
and the values the fixtures have, so a helm or kubectl upgrade cannot leave them stale.

Captured, per helm major: `helm version --short`; `helm history -o json` of a release with a
superseded, a deployed and a pending-upgrade revision (the third upgrade killed mid-wait, as a
crashed CI runner leaves it), with the toolkit's descriptions; `helm get values -o json` of
revision 2. Once (kubectl does not depend on helm): `kubectl get lease -o json` of the toolkit's
own lock manifest. Not captured: pod lists, whose content the fake controller writes anyway.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:  # `python -m tests.capture` from anywhere
    sys.path.insert(0, str(REPOSITORY))

from aegis_delivery.cluster import kube  # noqa: E402
from aegis_delivery.cluster.helm import Helm  # noqa: E402
from aegis_delivery.tools import tools_directory  # noqa: E402
from tests.kube_api import FakeCluster, LocalKubeAPI  # noqa: E402

CAPTURED = REPOSITORY / "tests" / "fixtures" / "captured"
TOOLS = tools_directory(REPOSITORY)
NS = "aegis-staging"
RELEASE = "aegis"
REVISIONS = (  # tag, monitor-api digest, the toolkit's description
    ("main-1111111", "sha256:" + "1" * 64, "tag=main-1111111 sha=1111111 by=ci"),
    ("main-2222222", "sha256:" + "2" * 64, "tag=main-2222222 sha=2222222 by=ci"),
    ("main-3333333", "sha256:" + "3" * 64, "tag=main-3333333 sha=3333333 by=ci"),
)
HOLDER = "ci@runner-1"
LEASE_TIME = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)


def helm_binary(major: int) -> Path:
    return TOOLS / ("helm" if major == 4 else "helm3")


def kill_mid_upgrade(
    argv: Sequence[str], environ: Mapping[str, str], pending: Callable[[], bool]
) -> None:
    """Start a helm upgrade that waits, and SIGKILL it once *pending* sees the release
    pending-upgrade: what a crashed CI runner leaves behind."""
    helm = subprocess.Popen(argv, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not pending():
            if time.monotonic() > deadline:
                raise AssertionError("the upgrade never became pending-upgrade")
            time.sleep(0.2)
    finally:
        helm.send_signal(signal.SIGKILL)
        helm.wait()


def capture(major: int, work: Path) -> dict[str, str]:
    """File name -> what the binaries printed, for one helm major, in a fresh local API."""
    work.mkdir(parents=True, exist_ok=True)
    chart = work / "chart"
    shutil.copytree(REPOSITORY / "helm", chart, dirs_exist_ok=True)
    helm = Helm(helm_binary(major), major)
    kubectl = str(TOOLS / "kubectl")
    with LocalKubeAPI() as api, FakeCluster(api) as controller:
        api.add_namespace(NS)
        kubeconfig = work / "kubeconfig.yaml"
        api.kubeconfig(kubeconfig, "aegis-staging", NS)
        environ = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(work / "home"),
            **{name: str(work / "helm" / name) for name in
               ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")},
        }  # fmt: skip

        def run(*argv: str, stdin: str | None = None) -> str:
            done = subprocess.run(
                argv, input=stdin, env=environ, capture_output=True, text=True, timeout=120,
                check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
            return done.stdout

        def upgrade(tag: str, digest: str, description: str) -> list[str]:
            return [
                str(helm.path), "upgrade", "--install", RELEASE, str(chart), f"--namespace={NS}",
                f"--set=global.imageTag={tag}", f"--set=apps.monitorApi.image.digest={digest}",
                f"--description={description}", *helm.wait, "--timeout=60s",
            ]  # fmt: skip

        outputs = {"helm-version.txt": run(str(helm.path), "version", "--short")}
        controller.start(delay=0)
        for tag, digest, description in REVISIONS[:2]:
            run(*upgrade(tag, digest, description))
        outputs["helm-get-values-2.json"] = run(
            str(helm.path),
            "get",
            "values",
            RELEASE,
            f"--namespace={NS}",
            "--revision=2",
            "--output=json",
        )
        never = REVISIONS[2][1]
        controller.start(lambda dep: None if never in json.dumps(dep["spec"]) else "ready", 0)
        history = (str(helm.path), "history", RELEASE, f"--namespace={NS}", "--output=json")
        kill_mid_upgrade(
            upgrade(*REVISIONS[2]), environ, lambda: '"pending-upgrade"' in run(*history)
        )
        outputs["helm-history-pending.json"] = run(*history)
        manifest = kube.lease_manifest(RELEASE, NS, HOLDER, 620, LEASE_TIME, None)
        lease = run(
            kubectl, f"--namespace={NS}", "create", "--filename", "-", "--output", "name",
            stdin=manifest,
        ).strip()  # fmt: skip
        outputs["kubectl-get-lease.json"] = run(
            kubectl, f"--namespace={NS}", "get", lease, "--output", "json"
        )
    return outputs


def files(major: int) -> dict[str, str]:
    """The captured files' names under CAPTURED for one major (kubectl's only under helm4)."""
    names = ["helm-version.txt", "helm-get-values-2.json", "helm-history-pending.json"]
    if major == 4:
        names.append("kubectl-get-lease.json")
    return {name: f"helm{major}/{name}" for name in names}


def shape(value: Any) -> Any:  # noqa: ANN401 - any JSON value
    """The JSON's structure with each scalar replaced by its type: what a parser relies on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def stable(name: str, text: str) -> Any:  # noqa: ANN401 - any JSON value
    """What must not change between captures: the values parsers read (no times or ids)."""
    if name == "helm-version.txt":
        return text.strip()
    document = json.loads(text)
    if name == "helm-history-pending.json":
        keep = ("revision", "status", "chart", "app_version", "description")
        return [{key: entry.get(key) for key in keep} for entry in document]
    if name == "kubectl-get-lease.json":
        return {"kind": document["kind"], "spec": document["spec"]}
    return document


def main() -> None:
    import tempfile

    for major in (4, 3):
        with tempfile.TemporaryDirectory(prefix=f"capture-helm{major}-") as scratch:
            outputs = capture(major, Path(scratch))
        for name, relative in files(major).items():
            target = CAPTURED / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(outputs[name])
            print(f"wrote {target.relative_to(REPOSITORY)}")


if __name__ == "__main__":
    main()
