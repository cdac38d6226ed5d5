"""Verifying a release in the cluster, by asking it: pods (polled until ready, failing fast
on a fatal reason), rollouts, helm test, NATS; and, after a failure, the diagnosis (pods that
are not ready, their events and last logs). The verdicts and parsers it applies are pure and
live in `aegis_delivery.verification`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster import kube
from aegis_delivery.cluster.access import Cluster, history
from aegis_delivery.errors import GateFailed
from aegis_delivery.runner import Runner
from aegis_delivery.verification import VerifyReport, check_pods, parse_pods

POLL_SECONDS = 5.0


def _tail(text: str, characters: int) -> str:
    """The last whole lines of *text* that fit in *characters* (helm test's "NAME: aegis-pr-7",
    not "egis-pr-7"); only a last line longer than that is cut."""
    kept: list[str] = []
    for line in reversed(text.strip().splitlines()):
        if kept and sum(len(k) + 1 for k in kept) + len(line) > characters:
            break
        kept.append(line)
    return "\n".join(reversed(kept))[-characters:]


def diagnose(runner: Runner, cluster: Cluster) -> list[str]:
    """After a failed upgrade or check: pods that are not ready, their events and last logs;
    one ``pod: reason`` per pod that is not ready."""
    pods = runner.run(
        cluster.read(kube.pods_argv(cluster.kubectl, cluster.target), "pods"), check=False
    )
    if not pods.ran:
        return []
    if not pods.ok:
        runner.console.warn("could not list pods for diagnosis")
        return []
    reasons: list[str] = []
    for pod in parse_pods(pods.stdout):
        if pod.ready and not pod.problem:
            continue
        reasons.append(f"{pod.name}: {pod.problem or 'not ready'}")
        runner.console.error(reasons[-1])
        for argv in (kube.events_argv(cluster.kubectl, cluster.target, pod.name),
                     kube.logs_argv(cluster.kubectl, cluster.target, pod.name)):  # fmt: skip
            answer = runner.run(cluster.read(argv, "diagnose"), check=False)
            for line in (answer.stdout or answer.stderr).strip().splitlines()[-10:]:
                runner.console.output_line(line)
    after = history(runner, cluster)
    if after:
        latest = max(after, key=lambda r: r.revision)
        runner.console.info(
            f"release is now revision {latest.revision}: {latest.status} ({latest.description})"
        )
    return reasons


def verify_cluster(
    runner: Runner,
    apps: Sequence[str],
    cluster: Cluster,
    expected_digests: Mapping[str, str],
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> VerifyReport:
    """Pods (polled until ready, failing fast on a fatal reason), rollouts, helm test, NATS.

    The same steps run or print in a dry run: a check whose step was not run is "planned".
    """
    report = VerifyReport()
    target, kubectl, environment = cluster.target, cluster.kubectl, cluster.environment
    deadline = monotonic() + environment.timeout.seconds
    pods_step = cluster.read(kube.pods_argv(kubectl, target), "pods")
    while True:
        pods = runner.run(pods_step, check=False)
        if not pods.ran:
            report.planned("pods")
            break
        if not pods.ok:
            report.add(
                "pods", False, f"cluster unreachable: {_tail(pods.stderr or pods.stdout, 300)}"
            )
            raise GateFailed(f"verify: cannot list pods: {_tail(pods.stderr or pods.stdout, 300)}")
        verdicts = parse_pods(pods.stdout)
        problems = check_pods(verdicts, expected_digests)
        fatal = any(p.problem for p in verdicts) or not verdicts
        if not problems or fatal or monotonic() >= deadline:
            report.add("pods", not problems, "; ".join(problems) or f"{len(verdicts)} pods ready")
            break
        sleep(POLL_SECONDS)
    if report.failed:
        diagnose(runner, cluster)
        raise GateFailed("verify failed: " + str(report.checks[-1]["detail"]))
    steps = [
        (
            f"rollout {app}",
            cluster.read(
                kube.rollout_argv(
                    kubectl, target, f"{target.release}-{app}", environment.timeout.text
                ),
                f"rollout {app}",
            ),
        )
        for app in apps
    ]
    # helm test creates and deletes a test pod: a change, printed in a dry run.
    steps.append(
        (
            "helm test",
            cluster.change(
                helm_cli.test_argv(cluster.helm, target, environment), "helm test", capture=True
            ),
        )
    )
    if environment.nats:
        steps.append(("nats", cluster.read(kube.nats_ping_argv(kubectl, target), "NATS ping")))
    for name, step in steps:
        result = runner.run(step, check=False)
        if result.ran:
            said = result.stdout if result.ok else f"{result.stdout}\n{result.stderr}"
            report.add(name, result.ok, _tail(said, 300))
        else:
            report.planned(name)
    report.raise_on_failure()
    return report
