"""What a deploy would change, before it changes it: manifests compared as Kubernetes objects.

The new side is ``helm template`` of the chart with the deploy's values; the live side is
``helm get manifest`` of the current release. Objects are matched by kind, namespace and name;
the summary lists image changes first (the digests are what a deploy is about), then other
changed fields, then added and removed objects. Hooks (the ``helm test`` pod) are not part of
the release's objects and are left out on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from aegis_delivery.console import Console
from aegis_delivery.errors import AegisError

ObjectKey = tuple[str, str, str]  # kind, namespace, name
# Fields that change on every render or belong to helm's bookkeeping, not to what runs.
IGNORED_PREFIXES = ("metadata.labels.helm.sh/chart", "metadata.annotations.checksum/")


@dataclass(frozen=True)
class ImageChange:
    obj: str  # Kind/name
    container: str
    old: str | None
    new: str | None

    def line(self) -> str:
        return f"{self.obj} {self.container}: {self.old or '(none)'} -> {self.new or '(none)'}"


@dataclass(frozen=True)
class FieldChange:
    obj: str
    path: str
    old: object
    new: object

    def line(self) -> str:
        return f"{self.obj} {self.path}: {_short(self.old)} -> {_short(self.new)}"


@dataclass
class ManifestDiff:
    images: list[ImageChange] = field(default_factory=list)
    changed: list[FieldChange] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.images or self.changed or self.added or self.removed)

    def summary(self, limit: int = 12) -> list[str]:
        """A few lines for a person: images first, then the rest, counted when long."""
        if self.empty:
            return ["no change: the release would render exactly what runs"]
        lines = [f"image {change.line()}" for change in self.images]
        lines += [f"added {name}" for name in self.added]
        lines += [f"removed {name}" for name in self.removed]
        fields = [f"changed {change.line()}" for change in self.changed]
        lines += fields[:limit]
        if len(fields) > limit:
            lines.append(f"... and {len(fields) - limit} more changed fields (--json lists all)")
        return lines

    def show(self, console: Console, environment: str, limit: int = 12) -> None:
        """The summary for people (and, with --summary, the step summary)."""
        console.info(f"what a deploy changes in {environment}:")
        for line in self.summary(limit):
            console.info(f"  {line}")
        console.summarize(f"Deploy diff ({environment})", {"changes": self.summary(50)})

    def document(self) -> dict[str, object]:
        return {
            "images": [change.__dict__ for change in self.images],
            "changed": [
                {"object": c.obj, "path": c.path, "old": c.old, "new": c.new} for c in self.changed
            ],
            "added": list(self.added),
            "removed": list(self.removed),
        }


def _short(value: object, width: int = 60) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def parse_manifests(text: str, source: str) -> dict[ObjectKey, dict[str, object]]:
    """A multi-document YAML stream as objects by (kind, namespace, name), hooks left out."""
    import yaml  # deferred: keeps `invoke --list` fast

    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise AegisError(f"{source} is not YAML: {str(error).splitlines()[0]}") from None
    objects: dict[ObjectKey, dict[str, object]] = {}
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document:
            continue
        metadata = document.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and "helm.sh/hook" in annotations:
            continue
        key = (str(document["kind"]), str(metadata.get("namespace", "")), str(metadata.get("name")))
        objects[key] = document
    return objects


def _name(key: ObjectKey) -> str:
    return f"{key[0]}/{key[2]}"


def container_images(obj: Mapping[str, object]) -> dict[str, str]:
    """Container name -> image, for workloads (pod templates) and bare pods."""
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, dict) else spec
    found: dict[str, str] = {}
    if not isinstance(pod, dict):
        return found
    for key in ("initContainers", "containers"):
        for container in pod.get(key) or []:
            if isinstance(container, dict):
                found[str(container.get("name"))] = str(container.get("image"))
    return found


def _flatten(value: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(i, dict) and "name" in i for i in value)
    ):
        for item in value:  # lists of named things (containers, env, ports): by name
            yield from _flatten(item, f"{prefix}[{item['name']}]")
    else:
        yield prefix, value


def _fields(obj: Mapping[str, object]) -> dict[str, object]:
    flat = dict(_flatten(obj))
    return {
        path: value
        for path, value in flat.items()
        if not path.startswith(IGNORED_PREFIXES) and not path.endswith(".image")
    }


def compare(
    live: Mapping[ObjectKey, Mapping[str, object]], new: Mapping[ObjectKey, Mapping[str, object]]
) -> ManifestDiff:
    diff = ManifestDiff()
    for key in sorted(set(live) | set(new)):
        if key not in live:
            diff.added.append(_name(key))
            continue
        if key not in new:
            diff.removed.append(_name(key))
            continue
        old_images, new_images = container_images(live[key]), container_images(new[key])
        for container in sorted(set(old_images) | set(new_images)):
            before, after = old_images.get(container), new_images.get(container)
            if before != after:
                diff.images.append(ImageChange(_name(key), container, before, after))
        old_fields, new_fields = _fields(live[key]), _fields(new[key])
        for path in sorted(set(old_fields) | set(new_fields)):
            if old_fields.get(path) != new_fields.get(path):
                diff.changed.append(
                    FieldChange(_name(key), path, old_fields.get(path), new_fields.get(path))
                )
    return diff
