"""A server in its own process on a free loopback port, for tests and benchmarks: started, its
address read from the one line it prints when listening, stopped for sure."""

from __future__ import annotations

import queue
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class LoopbackProcess:
    """The process part: `_spawn` in a subclass's `start`; `stop`, `stderr`, `with`."""

    name = "server"
    listening_prefix = "listening on "
    error: type[Exception] = RuntimeError

    def __init__(self) -> None:
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _spawn(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Start `command` and wait for its listening line (raises with its stderr)."""
        if self._process is not None:
            raise self.error(f"{self.name} already started")
        # A file, not a pipe: nobody reads stderr while the server runs, and a full pipe
        # would block it.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self._process = subprocess.Popen(
            list(command),
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = ""
        if not line.startswith(self.listening_prefix):
            stderr = self.stderr()
            self.stop()
            raise self.error(f"{self.name} did not start (stdout {line!r}):\n{stderr}")
        self.base_url = line[len(self.listening_prefix) :].strip()

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL if it lingers)."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stderr(self) -> str:
        """What the server has written to stderr (its own errors), for failure reports."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

