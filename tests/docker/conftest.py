"""Each module here scans with Trivy in its own cache directory.

Trivy's cache takes one process at a time ("cache may be in use by another process"), so
modules sharing one could not run on parallel workers. Each module's directory is kept
between runs (under ~/.cache), so a warm run reuses its layer analyses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

TRIVY_CACHES = Path.home() / ".cache" / "aegis-tests" / "trivy"


@pytest.fixture(scope="module", autouse=True)
def own_trivy_cache(request: pytest.FixtureRequest) -> Iterator[Path]:
    directory = TRIVY_CACHES / Path(str(request.module.__file__)).stem
    directory.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIVY_CACHE_DIR", str(directory))  # read by trivy, inherited by invoke
        yield directory
