"""scripts/fetch-wheel when two jobs fetch the same wheel into one tool cache at once (act runs
several jobs side by side): each writes its own partial file and renames a checked, complete
wheel into place, so neither finds the other's file gone. Served from loopback, slowly, so the
two downloads overlap."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY

WHEEL = b"PK\x03\x04 not really a wheel, but bytes with a known sha256 " * 4096
CHUNKS = 16


class SlowWheel(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(WHEEL)))
        self.end_headers()
        size = len(WHEEL) // CHUNKS + 1
        for start in range(0, len(WHEEL), size):
            self.wfile.write(WHEEL[start : start + size])
            self.wfile.flush()
            time.sleep(0.05)

    def log_message(self, *arguments: object) -> None:
        pass


@pytest.fixture
def served() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowWheel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tool-1.0-py3-none-any.whl"
    server.shutdown()


def fetch(url: str, sha256: str, dest: Path) -> subprocess.Popen[str]:
    program = (
        "import importlib.machinery, importlib.util, sys\n"
        "from pathlib import Path\n"
        "loader = importlib.machinery.SourceFileLoader('fetch_wheel', sys.argv[1])\n"
        "spec = importlib.util.spec_from_loader('fetch_wheel', loader)\n"
        "module = importlib.util.module_from_spec(spec); loader.exec_module(module)\n"
        "print(module.download(sys.argv[2], sys.argv[3], Path(sys.argv[4])))\n"
    )
    script = str(REPOSITORY / "scripts" / "fetch-wheel")
    return subprocess.Popen(
        [sys.executable, "-c", program, script, url, sha256, str(dest)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_fetches_of_one_wheel_at_once_both_succeed(served: str, tmp_path: Path) -> None:
    sha256 = hashlib.sha256(WHEEL).hexdigest()
    both = [fetch(served, sha256, tmp_path) for _ in range(2)]
    results = [(process.wait(60), *process.communicate()) for process in both]
    for code, out, err in results:
        assert code == 0, err
        assert Path(out.strip()) == tmp_path / "tool-1.0-py3-none-any.whl"
    assert (tmp_path / "tool-1.0-py3-none-any.whl").read_bytes() == WHEEL
    assert not list(tmp_path.glob("*.part"))  # nothing half-written left behind


def test_a_wrong_sha256_is_refused_and_leaves_nothing(served: str, tmp_path: Path) -> None:
    process = fetch(served, "0" * 64, tmp_path)
    code, _, err = process.wait(60), *process.communicate()
    assert code == 4 and "expected " + "0" * 64 in err and "refused" in err
    assert list(tmp_path.iterdir()) == []
