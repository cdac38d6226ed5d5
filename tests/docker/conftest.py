"""What the Docker modules share: a local registry per module, and a Trivy cache per module.

Trivy's cache takes one process at a time ("cache may be in use by another process"), so
modules sharing one could not run on parallel workers. Each module's directory is kept
between runs (under ~/.cache), so a warm run reuses its layer analyses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker_support import LocalRegistry, docker, require_engine

TRIVY_CACHES = Path.home() / ".cache" / "aegis-tests" / "trivy"


@pytest.fixture(scope="module", autouse=True)
def own_trivy_cache(request: pytest.FixtureRequest) -> Iterator[Path]:
    directory = TRIVY_CACHES / Path(str(request.module.__file__)).stem
    directory.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIVY_CACHE_DIR", str(directory))  # read by trivy, inherited by invoke
        yield directory


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A real registry (Distribution, htpasswd) on loopback, for this module's tests."""
    require_engine()
    server = LocalRegistry(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.stop()
    docker("logout", server.host, check=False)
