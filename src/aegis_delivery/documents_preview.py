"""The base every ``--json`` document model shares, and the preview tasks' documents
(``invoke preview``, ``preview-down``, ``preview-list``, ``preview-gc``, and ``invoke config``'s
``preview`` part); ``documents.py`` publishes them with the rest."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Document(BaseModel):
    """What every document holds; the rest is the command's own result."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = Field(alias="schema", ge=1, description="the compatibility version")


class Open(BaseModel):
    """A part of a document that may gain fields."""

    model_config = ConfigDict(extra="allow")


class ConfigPreview(Open):
    namespace_prefix: str
    domain: str
    kube_context: str
    share_staging_credentials: bool
    ttl: str
    max_previews: int
    timeout: str
    delete_timeout: str


class PreviewDocument(Document):
    """`invoke preview` and `preview-down --json`: one preview's create, refresh, skip
    (a fork's pull request) or removal."""

    action: Literal["up", "down"]
    pull_request: int
    namespace: str
    release: str
    url: str = Field(description="https://pr-N.DOMAIN; empty when skipped or removed")
    status: Literal["created", "refreshed", "skipped", "removed", "absent"]
    note: str
    expires_at: str | None
    dry_run: bool = Field(description="every change was printed, none made")
    deploy: dict[str, Any] | None = Field(description="the deploy's own document (deploy.v1.json)")


class PreviewRow(Open):
    pull_request: int
    namespace: str
    head_sha: str
    tag: str
    opened_by: str
    created_at: str | None
    age_seconds: int | None
    expires_at: str
    expired: bool
    keep: bool
    url: str
    phase: str
    status: str = Field(description="the release's helm status, 'no release', or terminating")
    removed: bool | None = Field(default=None, description="preview-gc: removed now")
    reason: str | None = Field(default=None, description="preview-gc: why removed or kept")


class PreviewListDocument(Document):
    """`invoke preview-list` and `preview-gc --json`: every preview (and gc's decision)."""

    previews: list[PreviewRow]
    removed: list[int] = Field(description="the pull requests whose previews gc removed")
