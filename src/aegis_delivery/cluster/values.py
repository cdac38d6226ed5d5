"""The values one deploy adds to the chart (`helm/values.deployment.yaml`): the tag, and each
app's repository and recorded digest; `invoke values` writes them, deploy and diff use them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.release import tags
from aegis_delivery.release.record import ReleaseRecord, read_optional, read_record
from aegis_delivery.release.tags import image_repository
from aegis_delivery.runner import Runner
from aegis_delivery.validation import docker_tag

VALUES_FILE = "values.deployment.yaml"


def values_key(app: str) -> str:
    """``monitor-api`` -> ``monitorApi``, the chart's key for the app."""
    first, *rest = app.split("-")
    return first + "".join(part.capitalize() for part in rest)


def deployment_values(
    config: DeliveryConfig, tag: str, record: ReleaseRecord | None, repository: str
) -> dict[str, object]:
    """The values one deploy adds: the tag, and each app's repository and recorded digest
    (an app the record lacks: *repository*, what `tags.release_repository` says)."""
    apps: dict[str, object] = {}
    for app in config.apps:
        released = record.images.get(app) if record is not None else None
        image: dict[str, str] = {
            "repository": (
                released.repository
                if released
                else image_repository(config.registry, repository, app)
            )
        }
        if released is not None and released.digest:
            image["digest"] = released.digest
        apps[values_key(app)] = {"image": image}
    return {"global": {"imageTag": tag}, "apps": apps}


@dataclass(frozen=True)
class PlannedImage:
    """The image helm will set for one app's workload, and where the reference came from."""

    app: str
    reference: str  # repo@sha256:... or repo:tag, as the chart's aegis.image renders it
    source: str

    def line(self) -> str:
        return f"image {self.app}: {self.reference} ({self.source})"


def chart_image(image: Mapping[str, object], global_tag: object) -> tuple[str, bool] | None:
    """The chart's rule (helm/templates/_helpers.tpl, aegis.image): a digest pins the image
    and wins over the tag; else the app's tag, else global.imageTag. (reference, pinned)."""
    repository, digest = image.get("repository"), image.get("digest")
    if not isinstance(repository, str) or not repository:
        return None
    if isinstance(digest, str) and digest:
        return f"{repository}@{digest}", True
    tag = image.get("tag") or global_tag
    return (f"{repository}:{tag}", False) if isinstance(tag, str) and tag else None


def planned_images(
    config: DeliveryConfig, values: Mapping[str, object], source: str
) -> list[PlannedImage]:
    """Each configured app's image as helm will set it from *values* (the document a deploy
    writes, or a revision's `helm get values`); *source* names where the values came from."""
    global_values = values.get("global")
    global_tag = global_values.get("imageTag") if isinstance(global_values, dict) else None
    apps = values.get("apps")
    planned: list[PlannedImage] = []
    for app in config.apps:
        entry = apps.get(values_key(app)) if isinstance(apps, dict) else None
        image = entry.get("image") if isinstance(entry, dict) else None
        found = chart_image(image, global_tag) if isinstance(image, dict) else None
        if found is None:
            planned.append(PlannedImage(app, "(the chart's default)", source))
            continue
        reference, pinned = found
        how = "by digest" if pinned else "by tag: the registry decides what it serves"
        planned.append(PlannedImage(app, reference, f"{source}, {how}"))
    return planned


def values_path(config: DeliveryConfig) -> Path:
    return config.chart / VALUES_FILE


def environment_values(config: DeliveryConfig, environment: str) -> tuple[Path, ...]:
    """The chart's own values for *environment* (``values.staging.yaml``), when it has them:
    given to helm before the deploy's values, so the tag and digests always win."""
    path = config.chart / f"values.{environment}.yaml"
    return (path,) if path.is_file() else ()


def merged(base: Mapping[str, object], extra: Mapping[str, object]) -> dict[str, object]:
    """*base* with *extra* laid over it, mapping by mapping (helm's own rule for values)."""
    result = dict(base)
    for key, value in extra.items():
        old = result.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            result[key] = merged(old, value)
        else:
            result[key] = value
    return result


def write_values(
    runner: Runner,
    config: DeliveryConfig,
    tag: str,
    record: ReleaseRecord | None,
    environ: Mapping[str, str],
    extra: Mapping[str, object] | None = None,
) -> Path:
    """The values file for one deploy (printed, not written, in a dry run); *extra* is what
    the deploy sets besides the images (a preview's ingress host)."""
    import yaml  # deferred: keeps `invoke --list` fast

    header = "# Written by `invoke values`/`invoke deploy` for one deploy; not committed.\n"
    document = deployment_values(config, tag, record, published_repository(config, environ))
    document = merged(document, extra or {})
    source = f"the release record for {record.tag}" if record is not None else f"the tag {tag}"
    for image in planned_images(config, document, source):
        runner.console.info(image.line())
    path = values_path(config)
    text = header + yaml.safe_dump(document, sort_keys=True)
    runner.write_file(path, text, "write the values", show=True)
    return path


def chosen_release(
    runner: Runner, config: DeliveryConfig, tag: str | None
) -> tuple[str, ReleaseRecord | None]:
    """The release record's tag and record; with an explicit --tag, that tag, pinned only when
    the record is for it (values, diff)."""
    if tag is None:
        recorded = read_record(config.build.release_file)
        return recorded.tag, recorded
    chosen = docker_tag(tag, what="--tag")
    found = read_optional(config.build.release_file)
    if found is not None and found.tag != chosen:
        runner.console.warn(f"the release record is for {found.tag!r}: {chosen!r} is not pinned")
        return chosen, None
    return chosen, found


def published_repository(config: DeliveryConfig, environ: Mapping[str, str]) -> str:
    """The repository this run publishes under, as push decides it."""
    return tags.published_repository(config.repository, environ)


def values_for(
    runner: Runner,
    config: DeliveryConfig,
    environment: str,
    tag: str | None,
    environ: Mapping[str, str],
) -> tuple[Path, str, int]:
    """`invoke values`: from the release record, or for an explicit tag (pinned if recorded)."""
    config.environment(environment)
    chosen, record = chosen_release(runner, config, tag)
    path = write_values(runner, config, chosen, record, environ)
    return path, chosen, len(record.digests()) if record else 0
