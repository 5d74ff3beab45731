"""A loopback server that answers each request with bytes a test scripts, byte for byte, and
records what arrived (the request's raw bytes and which connection carried it), over plain
TCP or TLS.

The answer for a path is a list of byte strings sent in turn, or one of the actions CLOSE
(close without answering) and SILENT (never answer). After the answer the connection is
kept unless the script says `then_close`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

CLOSE = "close"
SILENT = "silent"


@dataclass
class Script:
    answer: list[bytes] | str
    then_close: bool = False


@dataclass
class Seen:
    raw: bytes
    connection: int


@dataclass
class ScriptedServer:
    """Call `url(path)` for an address; `scripts[path]` says how to answer."""

    tls: ssl.SSLContext | None = None
    scripts: dict[str, Script] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    ended: dict[int, threading.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # wakes the accept below (close alone does not)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            number = self.connections
            self.ended[number] = threading.Event()
            threading.Thread(target=self._serve, args=(client, number), daemon=True).start()

    def _serve(self, client: socket.socket, number: int) -> None:
        try:
            if self.tls is not None:
                client = self.tls.wrap_socket(client, server_side=True)
            with client:
                while True:
                    raw = _read_request(client)
                    if raw is None:
                        return
                    self.seen.append(Seen(raw, number))
                    path = raw.split(b" ", 2)[1].split(b"?")[0].decode()
                    script = self.scripts.get(path, Script([_OK]))
                    if isinstance(script.answer, str):  # CLOSE or SILENT
                        if script.answer == SILENT:
                            self._stop.wait(5)  # holds the connection, answers nothing
                        return
                    for item in script.answer:
                        client.sendall(item)
                    if script.then_close:
                        return
        except (OSError, ssl.SSLError):
            return
        finally:
            self.ended[number].set()


def _read_request(client: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = client.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def answer(status_line: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """An answer's bytes: the status line, the headers as given, a blank line, the body."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{status_line}\r\n{head}\r\n".encode("iso-8859-1") + body


def json_answer(body: bytes = b'{"ok": true}', *extra: tuple[str, str]) -> bytes:
    return answer(
        "HTTP/1.1 200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra],
        body,
    )


_OK = json_answer()
