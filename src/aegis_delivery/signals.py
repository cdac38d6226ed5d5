"""Ctrl-C and SIGTERM, honoured within seconds and never lost: forwarding to what is running.

A command the runner started gets the signal once (it runs in its own process group, so a
terminal's Ctrl-C reaches only us) and ``grace_seconds`` to stop cleanly: helm marks a
release *failed*, not *pending*, when it is told. A second signal kills it. Commands that a
library starts from worker threads (python-on-whales builds) are found below this process and
treated the same way. With nothing running, the signal is raised as ``Interrupted`` at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType

from aegis_delivery.errors import Interrupted

# How long a child may take to stop cleanly after a forwarded signal before it is killed.
DEFAULT_GRACE_SECONDS = 20.0
HANDLED = (signal.SIGINT, signal.SIGTERM)


class SignalForwarder:
    """Installs SIGINT/SIGTERM handlers (main thread only) and forwards them to children."""

    def __init__(self, warn: Callable[[str], object], grace_seconds: float) -> None:
        self.warn = warn
        self.grace_seconds = grace_seconds
        self._child: subprocess.Popen[str] | None = None
        self._received: int | None = None
        self._library_children = False
        self._previous_handlers: dict[int, object] = {}
        self._previous_mask: set[int | signal.Signals] | None = None

    def install(self) -> None:
        """Handle SIGINT/SIGTERM, and unblock them: a process may inherit them blocked (a
        supervisor or CI harness that blocked them before starting us), and a blocked Ctrl-C
        stays pending for ever; that once hung a prompt in CI."""
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
            self._previous_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)

    def restore(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous_handlers.clear()
        if self._previous_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
            self._previous_mask = None

    @contextlib.contextmanager
    def watching(self, child: subprocess.Popen[str]) -> Iterator[None]:
        """While *child* runs, a signal goes to it; afterwards one received is raised."""
        self._child = child
        try:
            yield
        finally:
            self._child = None

    def raise_received(self) -> None:
        """A signal forwarded while a command ran ends the task as ``Interrupted``."""
        if self._received is not None:
            signum, self._received = self._received, None
            raise Interrupted(signum)

    @contextlib.contextmanager
    def library_children(self) -> Iterator[None]:
        """While a library runs commands of its own (in threads), a signal is forwarded to
        every process this one started, killed after the grace period; on leaving, an
        interruption is raised as ``Interrupted``, never swallowed as a failure."""
        self._library_children = True
        try:
            yield
        finally:
            self._library_children = False
        self.raise_received()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        child = self._child
        if child is None or child.poll() is not None:
            if self._library_children:
                self._forward_to_library_children(signum)
                return
            raise Interrupted(signum)
        if self._received is not None:
            # A second signal: the user insists. Stop waiting.
            child.kill()
            return
        self._received = signum
        child.send_signal(signum)
        timer = threading.Timer(self.grace_seconds, _kill_if_running, args=(child,))
        timer.daemon = True
        timer.start()
        self._say_from_handler(
            f"received {signal.Signals(signum).name}: forwarded to the running command; "
            f"waiting up to {self.grace_seconds:g}s for it to stop cleanly"
        )

    def _say_from_handler(self, warning: str) -> None:
        """A signal handler runs inside whatever the main thread was doing, perhaps writing a
        child's line to stderr: writing there again raises "reentrant call" (and once did,
        before the signal was forwarded). A thread says it as soon as stderr is free."""
        threading.Thread(target=self.warn, args=(warning,), daemon=True).start()

    def _forward_to_library_children(self, signum: int) -> None:
        pids = descendants(os.getpid())
        if self._received is not None:  # a second signal: the user insists
            _signal_all(pids, signal.SIGKILL)
            return
        self._received = signum
        _signal_all(pids, signum)
        timer = threading.Timer(self.grace_seconds, self._kill_descendants)
        timer.daemon = True
        timer.start()
        self._say_from_handler(
            f"received {signal.Signals(signum).name}: forwarded to {len(pids)} running "
            f"command(s) (the builds); waiting up to {self.grace_seconds:g}s for them to stop"
        )

    def _kill_descendants(self) -> None:
        left = descendants(os.getpid())
        if left:
            self.warn(f"killing {len(left)} command(s) that did not stop in time")
        _signal_all(left, signal.SIGKILL)


def _kill_if_running(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.kill()


def descendants(root: int) -> list[int]:
    """Every live process below *root*, children first (Linux ``/proc``; [] elsewhere)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = entry.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after it.
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    queue = list(parents.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(parents.get(pid, []))
    return found


def _signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
