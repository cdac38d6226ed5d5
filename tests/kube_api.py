"""A local Kubernetes API for tests: kmock 0.8 plus a small adapter, enough for real helm/kubectl.

kmock (``KubernetesEmulator``) provides the HTTP server, the discovery endpoints (with its bundled
resource list), the error format and the object store (``objects`` keeps every version of every
object). The adapter adds what helm and kubectl need and kmock lacks: URL routing that understands
``/api/v1/namespaces/NAME``, protobuf Secret/ConfigMap bodies, PUT, strategic-merge/apply patches,
label and field selectors, typed ``...List`` kinds, uid/resourceVersion/generation, conflicts,
resumable watches with a JSON content type and the initial-events-end bookmark.
``FakeCluster`` plays the controllers: it writes ReplicaSets, Pods and statuses on demand.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import copy
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import aiohttp.web
import attrs
import kmock

JSON = dict[str, Any]
T = TypeVar("T")
Outcome = Literal["ready", "crashloop", "imagepull", "wrong-digest", "stuck"]

# -- protobuf: just enough to read the bodies client-go sends as application/vnd.kubernetes.protobuf


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value) of a protobuf message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        wire = tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield tag >> 3, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield tag >> 3, buf[pos : pos + size]
            pos += size
        else:  # fixed64 / fixed32: no field we read uses them
            pos += 8 if wire == 1 else 4


def _text(value: int | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(value: int | bytes) -> tuple[str, bytes]:
    """A map<string, string|bytes> entry: key = 1, value = 2."""
    parts = dict(_fields(value if isinstance(value, bytes) else b""))
    raw = parts.get(2, b"")
    return _text(parts.get(1, b"")), raw if isinstance(raw, bytes) else b""


def _object_meta(buf: bytes) -> JSON:
    meta: JSON = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, value in _fields(buf):
        if number in names:
            meta[names[number]] = _text(value)
        elif number in (11, 12):
            key, raw = _entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = raw.decode()
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
    return meta


def decode_protobuf(body: bytes) -> JSON:
    """Decode ``k8s\\0`` + runtime.Unknown holding a Secret, ConfigMap or DeleteOptions."""
    envelope = dict(_fields(body[4:]))
    header = envelope.get(1, b"")
    type_meta = dict(_fields(header if isinstance(header, bytes) else b""))
    api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
    raw = envelope.get(2, b"")
    obj: JSON = {"apiVersion": api_version, "kind": kind}
    for number, value in _fields(raw if isinstance(raw, bytes) else b""):
        if number == 1 and kind in ("Secret", "ConfigMap") and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
        elif kind == "Secret" and number == 2:
            key, data = _entry(value)
            obj.setdefault("data", {})[key] = base64.b64encode(data).decode()
        elif kind == "Secret" and number == 3:
            obj["type"] = _text(value)
        elif kind == "ConfigMap" and number in (2, 3):
            key, data = _entry(value)
            field, text = ("data", data.decode()) if number == 2 else ("binaryData", "")
            obj.setdefault(field, {})[key] = text or base64.b64encode(data).decode()
        elif kind in ("Secret", "ConfigMap") and number == 4:
            obj["immutable"] = bool(value)
        elif kind == "DeleteOptions" and number == 2 and isinstance(value, bytes):
            pre = dict(_fields(value))
            obj["preconditions"] = {
                k: _text(pre[n]) for n, k in [(1, "uid"), (2, "resourceVersion")] if n in pre
            }
        elif kind == "DeleteOptions" and number == 4:
            obj["propagationPolicy"] = _text(value)
        elif kind not in ("Secret", "ConfigMap", "DeleteOptions"):
            raise kmock.KubernetesError(
                415, "UnsupportedMediaType", f"no protobuf decoder for {kind}"
            )
    return obj


# -- selectors and patches ---------------------------------------------------------------------


def _dig(obj: JSON, dotted: str) -> object:
    node: object = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def label_match(selector: str, labels: dict[str, str]) -> bool:
    """``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, comma = and."""
    for term in filter(None, (t.strip() for t in re.split(r",(?![^()]*\))", selector))):
        if m := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term):
            key, op, values = m[1], m[2], {v.strip() for v in m[3].split(",")}
            if (key in labels and labels[key] in values) != (op == "in"):
                return False
        elif m := re.fullmatch(r"([^!=\s]+)\s*(!=|==|=)\s*(\S*)", term):
            if (labels.get(m[1]) == m[3]) != (m[2] != "!="):
                return False
        elif (term.lstrip("!") in labels) == term.startswith("!"):
            return False
    return True


def field_match(selector: str, obj: JSON) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, op, value = re.split(r"(!=|==|=)", term, maxsplit=1)
        found = _dig(obj, key.strip())
        if (str(found if found is not None else "") == value.strip()) != (op != "!="):
            return False
    return True


def matches(obj: JSON, namespace: str | None, labels: str, fields: str) -> bool:
    meta = obj["metadata"]
    return (
        namespace in (None, meta.get("namespace"))
        and label_match(labels, meta.get("labels") or {})
        and field_match(fields, obj)
    )


MERGE_KEYS = ("name", "containerPort", "mountPath", "devicePath", "port", "ip", "type", "key")


def strategic_merge(base: JSON, patch: JSON) -> JSON:
    """Strategic merge patch, simplified: lists of dicts merge on a shared key (name, port...).

    Directives (``$setElementOrder/...``, ``$retainKeys``) are dropped; ``$patch: delete`` works.
    Also used for server-side apply, which merges lists the same way.
    """
    merged = _merge(base, patch)
    return merged if isinstance(merged, dict) else {}


def _merge(base: object, patch: object) -> object:
    if isinstance(patch, list):
        return _merge_list(base if isinstance(base, list) else [], patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _merge_list(base: list[object], patch: list[object]) -> list[object]:
    items = [x for x in base + patch if isinstance(x, dict)]
    if len(items) < len(base) + len(patch):
        return copy.deepcopy(patch)
    key = next((k for k in MERGE_KEYS if all(k in x for x in items)), None)
    if key is None:
        return [_merge(None, item) for item in patch]
    merged: dict[object, object] = {x[key]: x for x in copy.deepcopy(items[: len(base)])}
    for item in items[len(base) :]:
        if item.get("$patch") == "delete":
            merged.pop(item[key], None)
        else:
            merged[item[key]] = _merge(merged.get(item[key]), item)
    return list(merged.values())


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the adapter ------------------------------------------------------------------------------


@attrs.frozen
class Target:
    """What a resource URL addresses."""

    resource: kmock.resource
    namespace: str | None
    name: str | None
    subresource: str | None


@attrs.frozen
class Event:
    rv: int
    resource: kmock.resource
    type: str
    object: JSON


def _error(status: int, reason: str, message: str, target: Target | None = None) -> Exception:
    details: JSON = {}
    if target is not None:
        details = {"name": target.name or "", "group": target.resource.group or ""}
        details["kind"] = target.resource.plural or ""
    return kmock.KubernetesError(status, reason, message, details)


@attrs.define(kw_only=True)
class KubeAdapter(kmock.KubernetesEmulator):
    """kmock's emulator with the resource verbs rewritten the way the real API server behaves."""

    server_version: tuple[int, int] = (1, 35)
    openapi: bool = True  # the field-validation stub below; False: as kmock, no /openapi at all
    rv: int = attrs.field(default=0, init=False)
    events: list[Event] = attrs.field(factory=list, init=False)
    log: list[str] = attrs.field(factory=list, init=False)  # "METHOD /path?query -> status"
    pod_logs: dict[tuple[str | None, str], str] = attrs.field(factory=dict, init=False)
    closing: bool = attrs.field(default=False, init=False)
    _tick: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    # Set on every write, for threads outside the loop (the fake controller sleeps on it).
    changed: threading.Event = attrs.field(factory=threading.Event, init=False)
    _answers: dict[tuple[str, str, int], tuple[int, dict[str, str], bytes]] = attrs.field(
        factory=dict, init=False
    )
    # An instant controller (FakeCluster.start with no delay): called, in a worker thread, with
    # (namespace, name) after each write of a Deployment's spec and before the writer gets its
    # answer, so that a client that checks readiness at once (helm 3's --wait polls every 2 s,
    # checking first at once) sees the rollout its write caused already finished.
    after_deployment_write: Callable[[str | None, str], None] | None = attrs.field(
        default=None, init=False
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()  # k3s's built-in resources, shipped inside kmock
        if self.openapi:
            self.fallback["get", re.compile(r"/openapi/v3(/.*)?")] << self._serve_openapi

    async def _serve_openapi(self, request: kmock.Request) -> kmock.Payload:
        """Just enough OpenAPI v3 for kubectl/helm to see server-side field validation.

        With it, ``kubectl create -f`` needs no ``--validate=false`` (and helm validates on the
        server, i.e. not at all). Without it, both try to download OpenAPI v2 schemas and fail.
        """
        by_gv: dict[str, list[kmock.resource]] = {}
        for res in self.resources:
            by_gv.setdefault(("apis/" if res.group else "api/") + self.api_version(res), []).append(
                res
            )
        wanted = request.url.path.removeprefix("/openapi/v3").strip("/")
        if not wanted:
            return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}"} for gv in by_gv}}
        paths: JSON = {}
        for res in by_gv.get(wanted, []):
            gvk = {"group": res.group, "version": res.version, "kind": self.kind(res)}
            param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
            patch = {"x-kubernetes-group-version-kind": gvk, "parameters": [param], "responses": {}}
            paths[f"/{wanted}/namespaces/{{namespace}}/{res.plural}/{{name}}"] = {"patch": patch}
            paths[f"/{wanted}/{res.plural}/{{name}}"] = {"patch": patch}
        info = {"title": "Kubernetes", "version": "v1.35.0"}
        return {"openapi": "3.0.0", "info": info, "paths": paths, "components": {"schemas": {}}}

    # discovery: kmock serves it; two fixes
    async def _serve_server_version(self, request: kmock.Request) -> kmock.Payload:
        major, minor = self.server_version
        return {"major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.0"}

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        payload = await super()._serve_version(request)
        if not isinstance(payload, dict):
            return payload
        payload["groupVersion"] = payload["groupVersion"].lstrip("/")  # kmock says "/v1"
        for entry in payload["resources"]:  # kmock copies these onto subresources: kubectl warns
            if "/" in entry["name"]:
                entry.update(shortNames=[], categories=[])
        return payload

    def _target(self, path: str) -> Target | None:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None  # discovery and everything else: kmock
        namespace = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and kmock.resource(group, version, rest[2]) in self.resources
        ):
            namespace, rest = rest[1], rest[2:]
        res = kmock.resource(group, version, rest[0])
        if res not in self.resources:
            raise _error(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        return Target(res, namespace, name, rest[2] if len(rest) > 2 else None)

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response: aiohttp.web.StreamResponse | None = None
        try:
            target = self._target(raw.path)
            if target is None:
                response = await self._discovery(raw)  # discovery, /version, DSL reactions
            else:
                response = await self._serve(raw, target)
                await self._react(raw, target, response)
        except kmock.KubernetesError as exc:
            response = await self._render_error(exc)
        finally:  # watches end "cancelled": aiohttp cancels the handler when the client goes
            status = "cancelled" if response is None else response.status
            self.log.append(f"{raw.method} {raw.path_qs} -> {status}")
        return response

    async def _react(
        self, raw: aiohttp.web.BaseRequest, t: Target, response: aiohttp.web.StreamResponse
    ) -> None:
        """Let an instant controller act on a Deployment write before the writer hears back."""
        hook = self.after_deployment_write
        written = raw.method in ("POST", "PUT", "PATCH") and t.subresource is None
        if hook is None or not written or t.resource != DEPLOYMENTS or response.status >= 300:
            return
        name = t.name
        if name is None and isinstance(response, aiohttp.web.Response) and response.body:
            name = json.loads(bytes(response.body))["metadata"]["name"]  # type: ignore[arg-type]
        if name is not None and not raw.query.get("dryRun"):
            await asyncio.get_running_loop().run_in_executor(None, hook, t.namespace, name)

    async def _discovery(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's answer, remembered for GETs: every helm and kubectl process asks the same
        ~40 discovery and OpenAPI questions, and kmock matches each against all its reactions
        (a second of CPU per test). The key holds the resource count, so new kinds are seen."""
        key = (raw.path_qs, raw.headers.get("Accept", ""), len(self.resources))
        known = self._answers.get(key) if raw.method == "GET" else None
        if known is not None:
            status, headers, content = known
            return aiohttp.web.Response(status=status, body=content, headers=headers)
        response = await super().__call__(raw)
        if raw.method == "GET" and isinstance(response, aiohttp.web.Response):
            body = response.body
            if isinstance(body, bytes):
                headers = {k: v for k, v in response.headers.items() if k != "Content-Length"}
                self._answers[key] = (response.status, headers, body)
        return response

    # -- the store: kmock's ObjectsArray, versions kept; every write is an event -----------------

    def kind(self, res: kmock.resource) -> str:
        return self.resources[res].kind or (res.plural or "").capitalize()

    def api_version(self, res: kmock.resource) -> str:
        return f"{res.group}/{res.version}" if res.group else str(res.version)

    def current(self, res: kmock.resource, namespace: str | None, name: str) -> JSON | None:
        key = (res, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    def select(
        self, res: kmock.resource, namespace: str | None, labels: str = "", fields: str = ""
    ) -> list[JSON]:
        found = [
            copy.deepcopy(obj.raw)
            for (r, _, _), obj in self.objects.items()
            if r == res and not obj.deleted and matches(obj.raw, namespace, labels, fields)
        ]
        return sorted(
            found, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
        )

    def commit(self, res: kmock.resource, obj: JSON, kind: str = "") -> JSON:
        """Store a new version (or a deletion when kind == "DELETED") and tell the watchers."""
        meta = obj["metadata"]
        key = (res, meta.get("namespace"), meta["name"])
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        if kind == "DELETED":
            self.objects[key].delete()
        elif key in self.objects:
            self.objects[key].create(copy.deepcopy(obj))
        else:
            self.objects[key] = copy.deepcopy(obj)
        kind = kind or ("ADDED" if len(self.objects[key].history) == 1 else "MODIFIED")
        self.events.append(Event(self.rv, res, kind, copy.deepcopy(obj)))
        self._tick.set()
        self._tick = asyncio.Event()
        self.changed.set()
        return obj

    def create(self, res: kmock.resource, namespace: str | None, obj: JSON) -> JSON:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if namespace is not None:
            meta["namespace"] = namespace
        if self.current(res, namespace, meta["name"]) is not None:
            target = Target(res, namespace, meta["name"], None)
            raise _error(
                409, "AlreadyExists", f'{self._qual(res)} "{meta["name"]}" already exists', target
            )
        obj.update(apiVersion=self.api_version(res), kind=self.kind(res))
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        if res == kmock.resource("", "v1", "services"):
            spec = obj.setdefault("spec", {})
            if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
                spec["clusterIP"] = f"10.96.{self.rv // 250 % 250}.{self.rv % 250 + 1}"
                spec["clusterIPs"] = [spec["clusterIP"]]
        if res == kmock.resource("", "v1", "namespaces"):
            obj["status"] = {"phase": "Active"}
        return self.commit(res, obj)

    def replace(self, res: kmock.resource, old: JSON, new: JSON, sub: str | None = None) -> JSON:
        """A new version of ``old``: PUT/PATCH semantics for the object or its status."""
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        meta = old["metadata"]
        if sent_rv and sent_rv != meta["resourceVersion"]:
            raise _error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {self._qual(res)} "{meta["name"]}": the object '
                "has been modified; please apply your changes to the latest version and try again",
                Target(res, meta.get("namespace"), meta["name"], sub),
            )
        if sub == "status":
            new = dict(old, status=new.get("status", {}))
        else:
            new = dict(new, apiVersion=old["apiVersion"], kind=old["kind"])
            if "status" in self.resources[res].subresources and "status" in old:
                new["status"] = old["status"]
            kept = ("uid", "creationTimestamp", "generation", "namespace")  # cluster-scoped: none
            keep = {k: meta[k] for k in kept if k in meta}
            new["metadata"] = dict(new.get("metadata") or {}, **keep, name=meta["name"])
            if new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] = meta.get("generation", 1) + 1
            if old.get("spec", {}).get("clusterIP") and isinstance(new.get("spec"), dict):
                new["spec"].setdefault("clusterIP", old["spec"]["clusterIP"])
        return self.commit(res, copy.deepcopy(new))

    def remove(self, res: kmock.resource, obj: JSON, cascade: bool = True) -> JSON:
        self.commit(res, obj, "DELETED")
        if res == kmock.resource("", "v1", "namespaces"):  # the namespace's controller, at once
            name = obj["metadata"]["name"]
            for (r, namespace, _), held in list(self.objects.items()):
                if namespace == name and not held.deleted:
                    self.commit(r, copy.deepcopy(held.raw), "DELETED")
        uid = obj["metadata"]["uid"]
        for (r, _, _), other in list(self.objects.items()):
            owners = (
                []
                if other.deleted or not cascade
                else other.raw["metadata"].get("ownerReferences") or []
            )
            if any(o.get("uid") == uid for o in owners):
                self.remove(r, copy.deepcopy(other.raw))
        return obj

    def _qual(self, res: kmock.resource) -> str:
        return f"{res.plural}.{res.group}" if res.group else str(res.plural)

    # -- the HTTP verbs ------------------------------------------------------------------------

    async def _body(self, raw: aiohttp.web.BaseRequest) -> JSON:
        data = await raw.read()
        if data.startswith(b"k8s\x00"):
            return decode_protobuf(data)
        loaded = json.loads(data) if data.strip() else {}
        return loaded if isinstance(loaded, dict) else {"$jsonpatch": loaded}

    async def _serve(self, raw: aiohttp.web.BaseRequest, t: Target) -> aiohttp.web.StreamResponse:
        res, ns, q = t.resource, t.namespace, raw.query
        if raw.method == "GET" and q.get("watch") in ("true", "1"):
            return await self._watch(raw, t)
        body = await self._body(raw) if raw.method in ("POST", "PUT", "PATCH", "DELETE") else {}
        if raw.method == "POST" and t.name is None:
            if q.get("dryRun"):
                return self._json(body, 201)
            return self._json(self.create(res, ns, body), 201)
        if t.name is None and raw.method == "GET":
            items = self.select(res, ns, q.get("labelSelector", ""), q.get("fieldSelector", ""))
            meta = {"resourceVersion": str(self.rv)}
            kind = self.kind(res) + "List"
            return self._json(
                {
                    "apiVersion": self.api_version(res),
                    "kind": kind,
                    "metadata": meta,
                    "items": items,
                }
            )
        if t.name is None:
            raise _error(405, "MethodNotAllowed", f"{raw.method} on a collection is not supported")
        if t.subresource not in (None, "status", "log"):
            raise _error(404, "NotFound", f"the subresource {t.subresource} is not supported", t)
        old = self.current(res, ns, t.name)
        if raw.method == "PATCH" and old is None and "apply-patch" in raw.content_type:
            return self._json(self.create(res, ns, body), 201)  # server-side apply: upsert
        if old is None:
            raise _error(404, "NotFound", f'{self._qual(res)} "{t.name}" not found', t)
        if raw.method == "GET" and t.subresource == "log":
            return aiohttp.web.Response(text=self.pod_logs.get((ns, t.name), ""))
        if raw.method == "GET":
            return self._json(old)
        if raw.method == "PUT":
            return self._json(self.replace(res, old, body, t.subresource))
        if raw.method == "PATCH":
            if "$jsonpatch" in body or raw.content_type == "application/merge-patch+json":
                patched = kmock.Object(old)
                patched.patch(body.get("$jsonpatch", body))
                new = copy.deepcopy(patched.raw)
            else:  # strategic merge and server-side apply
                new = strategic_merge(old, body)
            return self._json(self.replace(res, old, new, t.subresource))
        if raw.method == "DELETE":
            for field, value in (body.get("preconditions") or {}).items():
                if value and value != old["metadata"].get(field):
                    current = old["metadata"].get(field)
                    message = f"Precondition failed: {field}: {value}, current {current}"
                    raise _error(409, "Conflict", message, t)
            return self._json(self.remove(res, old, body.get("propagationPolicy") != "Orphan"))
        raise _error(405, "MethodNotAllowed", f"{raw.method} is not supported")

    def _json(self, payload: JSON, status: int = 200) -> aiohttp.web.Response:
        return aiohttp.web.json_response(payload, status=status)

    async def _watch(self, raw: aiohttp.web.BaseRequest, t: Target) -> aiohttp.web.StreamResponse:
        q = raw.query
        labels, fields = q.get("labelSelector", ""), q.get("fieldSelector", "")
        if t.name:
            fields = ",".join(filter(None, [fields, f"metadata.name={t.name}"]))
        since = q.get("resourceVersion", "")
        initial = since in ("", "0") or q.get("sendInitialEvents") == "true"
        deadline = time.monotonic() + float(q.get("timeoutSeconds", "1800"))
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        send: list[JSON] = []
        cursor = self.rv if initial else int(since)
        if initial:
            send += [
                {"type": "ADDED", "object": o}
                for o in self.select(t.resource, t.namespace, labels, fields)
            ]
        if q.get("sendInitialEvents") == "true":
            annotations = {"k8s.io/initial-events-end": "true"}
            meta = {"resourceVersion": str(cursor), "annotations": annotations}
            bookmark = {
                "apiVersion": self.api_version(t.resource),
                "kind": self.kind(t.resource),
                "metadata": meta,
            }
            send.append({"type": "BOOKMARK", "object": bookmark})
        try:
            while not self.closing:
                for event in send:
                    await response.write(json.dumps(event).encode() + b"\n")
                tick, remaining, send = self._tick, deadline - time.monotonic(), []
                if raw.transport is None or raw.transport.is_closing() or remaining <= 0:
                    break  # the client went away (checked every second), or time is up
                if self.events and self.events[-1].rv > cursor:
                    news = [e for e in self.events if e.rv > cursor and e.resource == t.resource]
                    send = [
                        {"type": e.type, "object": e.object}
                        for e in news
                        if matches(e.object, t.namespace, labels, fields)
                    ]
                    cursor = self.rv
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(tick.wait(), min(remaining, 1))
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        return response


# -- the threaded server ----------------------------------------------------------------------


class LocalKubeAPI:
    """kmock + adapter on a free loopback port, in a thread with its own asyncio loop."""

    def __init__(self, *, openapi: bool = True) -> None:
        self.openapi = openapi
        self.adapter: KubeAdapter | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalKubeAPI:
        self._thread = threading.Thread(target=self._run, name="kmock-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(15) or self._failure is not None:
            raise RuntimeError(f"the kmock API did not start: {self._failure!r}")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            adapter = await stack.enter_async_context(KubeAdapter(openapi=self.openapi))
            server = await stack.enter_async_context(kmock.Server(adapter, user_agent=""))
            self.adapter, self.port = adapter, server.port
            self._ready.set()
            await self._stop.wait()
            adapter.closing = True  # end the open watches, or the server waits for them
            adapter._tick.set()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)

    def __enter__(self) -> LocalKubeAPI:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def call(self, fn: Callable[[KubeAdapter], T]) -> T:
        """Run ``fn(adapter)`` inside the server's loop (the store is not thread-safe) and wait."""
        if self._loop is None or self.adapter is None:
            raise RuntimeError("the API is not running: start() first")
        adapter = self.adapter
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(adapter))
            except BaseException as exc:
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result(15)

    # -- synchronous helpers for tests and the fake controllers --------------------------------

    def get(self, resource: str, namespace: str | None, name: str) -> JSON | None:
        return self.call(lambda a: a.current(kmock.resource(resource), namespace, name))

    def list(self, resource: str, namespace: str | None = None, labels: str = "") -> list[JSON]:
        return self.call(lambda a: a.select(kmock.resource(resource), namespace, labels))

    def put(self, resource: str, obj: JSON) -> JSON:
        """Create the object, or replace it (status included) if it exists."""
        res, meta = kmock.resource(resource), obj["metadata"]

        def write(a: KubeAdapter) -> JSON:
            old = a.current(res, meta.get("namespace"), meta["name"])
            if old is None:
                return a.create(res, meta.get("namespace"), copy.deepcopy(obj))
            new = a.replace(res, old, dict(obj, metadata=dict(meta, resourceVersion=None)))
            return a.replace(res, new, {"status": obj.get("status", {})}, "status")

        return self.call(write)

    def write_status(self, resource: str, namespace: str | None, name: str, status: JSON) -> JSON:
        def write(a: KubeAdapter) -> JSON:
            old = a.current(kmock.resource(resource), namespace, name)
            if old is None:
                raise LookupError(f"{resource} {namespace}/{name} does not exist")
            return a.replace(kmock.resource(resource), old, {"status": status}, "status")

        return self.call(write)

    def delete(self, resource: str, namespace: str | None, name: str) -> None:
        def remove(a: KubeAdapter) -> None:
            old = a.current(kmock.resource(resource), namespace, name)
            if old is not None:
                a.remove(kmock.resource(resource), old)

        self.call(remove)

    def set_pod_log(self, namespace: str, pod: str, text: str) -> None:
        """What ``kubectl logs POD`` prints (every container, whatever --tail)."""
        self.call(lambda a: a.pod_logs.__setitem__((namespace, pod), text))

    def add_namespace(self, name: str) -> None:
        if self.get("v1/namespaces", None, name) is None:
            self.put("v1/namespaces", {"metadata": {"name": name}})

    def kubeconfig(self, path: Path, context: str, namespace: str, token: str = "") -> str:
        """Write a kubeconfig for this server; return it base64-encoded (as ``KUBE_CONFIG``)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "kmock", "user": {"token": token} if token else {}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "kmock", "user": "kmock", "namespace": namespace},
                }
            ],
            "current-context": context,
        }
        text = json.dumps(config, indent=2) + "\n"  # JSON is YAML
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        return base64.b64encode(text.encode()).decode()


# -- the controllers --------------------------------------------------------------------------


DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")


def _rolled_out(dep: JSON) -> bool:
    """The Deployment's status is of its current generation, with every replica ready."""
    status = dep.get("status") or {}
    current = status.get("observedGeneration") == dep["metadata"]["generation"]
    return bool(
        current and int(status.get("readyReplicas", 0)) >= int(dep["spec"].get("replicas", 1))
    )


def digest_of(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


class FakeCluster:
    """Acts out the Deployment and ReplicaSet controllers and the kubelet, on demand or in a thread.

    ``reconcile(ns, name, outcome)`` writes the Deployment's ReplicaSet (owned, with the template's
    hash), its Pods (the template's images, ``imageID`` = ``repo@sha256:...``) and the statuses for
    one outcome. ``start(policy)`` does it for every new Deployment generation after ``delay``
    seconds; ``policy(deployment)`` returns the outcome, or None to leave that generation pending.
    With ``delay=0`` it acts before the API answers the write (KubeAdapter.after_deployment_write):
    a controller with no lag, so no client polls for a rollout that could not have finished.
    """

    def __init__(self, api: LocalKubeAPI) -> None:
        self.api = api
        self.errors: list[BaseException] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # on demand
    def reconcile(
        self, namespace: str, name: str, outcome: Outcome = "ready", digest: str | None = None
    ) -> JSON:
        dep = self.api.get("apps/v1/deployments", namespace, name)
        if dep is None:
            raise LookupError(f"no deployment {namespace}/{name}")
        template = copy.deepcopy(dep["spec"]["template"])
        replicas = int(dep["spec"].get("replicas", 1))
        pod_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        template["metadata"].setdefault("labels", {})["pod-template-hash"] = pod_hash
        owned = [
            rs
            for rs in self.api.list("apps/v1/replicasets", namespace)
            if any(
                o.get("uid") == dep["metadata"]["uid"]
                for o in rs["metadata"].get("ownerReferences", [])
            )
        ]
        healthy = outcome in ("ready", "wrong-digest")
        old_ready = 0
        for rs in owned:
            if rs["metadata"]["name"] != f"{name}-{pod_hash}":
                if healthy:
                    self._scale_down(namespace, rs)
                else:
                    old_ready += rs.get("status", {}).get("readyReplicas", 0)
        rs = self._replica_set(dep, template, f"{name}-{pod_hash}", replicas, len(owned) + 1)
        for pod in self.api.list("v1/pods", namespace, f"pod-template-hash={pod_hash}"):
            self.api.delete("v1/pods", namespace, pod["metadata"]["name"])
        for _ in range(replicas):
            self.api.put("v1/pods", self._pod(rs, template, outcome, digest))
        ready = replicas if healthy else 0
        counts = {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready}
        counts.update(
            fullyLabeledReplicas=replicas, observedGeneration=rs["metadata"]["generation"]
        )
        self.api.write_status("apps/v1/replicasets", namespace, rs["metadata"]["name"], counts)
        available = ready + old_ready
        status: JSON = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": replicas + (0 if healthy else old_ready),
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": [
                self._condition("Available", available >= replicas, "MinimumReplicasAvailable"),
                self._condition(
                    "Progressing",
                    True,
                    "NewReplicaSetAvailable" if healthy else "ReplicaSetUpdated",
                ),
            ],
        }
        if available < replicas:
            status["unavailableReplicas"] = replicas - available
        return self.api.write_status("apps/v1/deployments", namespace, name, status)

    def mark_ready(self, namespace: str, name: str) -> JSON:
        return self.reconcile(namespace, name, "ready")

    def mark_crashloop(self, namespace: str, name: str) -> JSON:
        return self.reconcile(namespace, name, "crashloop")

    def mark_image_pull_backoff(self, namespace: str, name: str) -> JSON:
        return self.reconcile(namespace, name, "imagepull")

    def mark_wrong_digest(self, namespace: str, name: str, digest: str = "") -> JSON:
        return self.reconcile(
            namespace, name, "wrong-digest", digest or digest_of("something else")
        )

    def mark_stuck(self, namespace: str, name: str) -> JSON:
        return self.reconcile(namespace, name, "stuck")

    # in the background
    def start(
        self, policy: Callable[[JSON], Outcome | None] = lambda dep: "ready", delay: float = 0.5
    ) -> FakeCluster:
        self.stop()
        self._stop.clear()
        assert self.api.adapter is not None
        if not delay:
            react = self.api.adapter.after_deployment_write = self._instant(policy)
            for dep in self.api.list("apps/v1/deployments"):  # what an earlier policy left
                if not _rolled_out(dep):
                    react(dep["metadata"]["namespace"], dep["metadata"]["name"])
        self._thread = threading.Thread(target=self._loop, args=(policy, delay), daemon=True)
        self._thread.start()
        return self

    def _instant(
        self, policy: Callable[[JSON], Outcome | None]
    ) -> Callable[[str | None, str], None]:
        def react(namespace: str | None, name: str) -> None:
            try:
                dep = self.api.get("apps/v1/deployments", namespace, name)
                outcome = policy(dep) if dep is not None and not self._stop.is_set() else None
                if outcome is not None:
                    self.reconcile(str(namespace), name, outcome)
            except Exception as exc:  # the test reads .errors
                self.errors.append(exc)

        return react

    def stop(self) -> None:
        if self.api.adapter is not None:
            self.api.adapter.after_deployment_write = None
        if self._thread is not None:
            self._stop.set()
            if self.api.adapter is not None:
                self.api.adapter.changed.set()  # wake the loop to see the stop
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FakeCluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _loop(self, policy: Callable[[JSON], Outcome | None], delay: float) -> None:
        """Runs on each write to the API (not on a timer), and when a pending rollout is due."""
        seen: dict[tuple[str, int], float] = {}
        assert self.api.adapter is not None
        changed = self.api.adapter.changed
        while not self._stop.is_set():
            changed.clear()  # before reading: a write from now on wakes the next round
            due = 1.0
            try:
                for dep in self.api.list("apps/v1/deployments") if delay else ():
                    meta = dep["metadata"]
                    key = (meta["uid"], meta["generation"])
                    first = seen.setdefault(key, time.monotonic())
                    if not first:
                        continue  # handled
                    waited = time.monotonic() - first
                    if waited < delay:
                        due = min(due, delay - waited)
                        continue
                    seen[key] = 0.0
                    outcome = policy(dep)
                    if outcome is not None:
                        self.reconcile(meta["namespace"], meta["name"], outcome)
                self._run_test_pods()
            except Exception as exc:  # the test reads .errors
                self.errors.append(exc)
            changed.wait(due)

    def _run_test_pods(self) -> None:
        """The kubelet for `helm test`: a hook pod without a phase runs and succeeds."""
        for pod in self.api.list("v1/pods"):
            meta = pod["metadata"]
            hook = (meta.get("annotations") or {}).get("helm.sh/hook")
            if hook == "test" and not (pod.get("status") or {}).get("phase"):
                self.set_test_log(meta["namespace"], meta["name"])
                self.api.write_status(
                    "v1/pods", meta["namespace"], meta["name"], {"phase": "Succeeded"}
                )

    def set_test_log(self, namespace: str, pod: str) -> None:
        self.api.set_pod_log(namespace, pod, "all services answered\n")

    # pieces
    def _replica_set(
        self, dep: JSON, template: JSON, name: str, replicas: int, revision: int
    ) -> JSON:
        meta = dep["metadata"]
        existing = self.api.get("apps/v1/replicasets", meta["namespace"], name)
        if existing is not None:
            revision = int(existing["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
        selector = copy.deepcopy(dep["spec"]["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = template["metadata"][
            "labels"
        ]["pod-template-hash"]
        owner = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        return self.api.put(
            "apps/v1/replicasets",
            {
                "metadata": {
                    "name": name,
                    "namespace": meta["namespace"],
                    "labels": template["metadata"]["labels"],
                    "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                    "ownerReferences": [owner],
                },
                "spec": {"replicas": replicas, "selector": selector, "template": template},
            },
        )

    def _scale_down(self, namespace: str, rs: JSON) -> None:
        for pod in self.api.list("v1/pods", namespace):
            if any(
                o.get("uid") == rs["metadata"]["uid"]
                for o in pod["metadata"].get("ownerReferences", [])
            ):
                self.api.delete("v1/pods", namespace, pod["metadata"]["name"])
        rs["spec"]["replicas"] = 0
        rs = self.api.put("apps/v1/replicasets", rs)
        status = {"replicas": 0, "observedGeneration": rs["metadata"]["generation"]}
        self.api.write_status("apps/v1/replicasets", namespace, rs["metadata"]["name"], status)

    def _pod(self, rs: JSON, template: JSON, outcome: Outcome, digest: str | None) -> JSON:
        meta, now = rs["metadata"], _now()
        statuses = []
        for container in template["spec"].get("containers", []):
            image = container["image"]
            repo = image.split("@")[0].rsplit(":", 1)[0] if "/" in image else image.split(":")[0]
            pinned = image.split("@", 1)[1] if "@sha256:" in image else None
            image_id = f"{repo}@{digest or pinned or digest_of(image)}"
            status: JSON = {"name": container["name"], "image": image, "imageID": image_id}
            status.update(ready=outcome in ("ready", "wrong-digest"), restartCount=0, started=True)
            status["state"] = {"running": {"startedAt": now}}
            if outcome == "crashloop":
                message = f"back-off 40s restarting failed container={container['name']}"
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
                status["lastState"] = {
                    "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}
                }
                status.update(restartCount=4, started=False)
            elif outcome == "imagepull":
                message = f'Back-off pulling image "{image}"'
                status["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": message}}
                status.update(imageID="", started=False)
            elif outcome == "stuck":
                status["state"] = {"waiting": {"reason": "ContainerCreating"}}
                status.update(imageID="", started=False)
            statuses.append(status)
        ready = outcome in ("ready", "wrong-digest")
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": meta["name"],
            "uid": meta["uid"],
        }
        return {
            "metadata": {
                "name": f"{meta['name']}-{secrets.token_hex(3)[:5]}",
                "namespace": meta["namespace"],
                "labels": template["metadata"]["labels"],
                "ownerReferences": [dict(owner, controller=True, blockOwnerDeletion=True)],
            },
            "spec": dict(template["spec"], nodeName="kmock-node"),
            "status": {
                "phase": "Pending" if outcome in ("imagepull", "stuck") else "Running",
                "conditions": [
                    self._condition("PodScheduled", True, ""),
                    self._condition("Initialized", True, ""),
                    self._condition("ContainersReady", ready, ""),
                    self._condition("Ready", ready, ""),
                ],
                "containerStatuses": statuses,
                "startTime": now,
                "podIP": "10.42.0.10",
                "hostIP": "10.0.0.1",
            },
        }

    @staticmethod
    def _condition(kind: str, ok: bool, reason: str) -> JSON:
        condition = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastTransitionTime": _now(),
        }
        return dict(condition, reason=reason) if reason else condition
