"""A tiny loopback HTTP API for the cases a real provider will not produce on demand."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubAPI:
    """Serves /always-401 (401 whatever the token), /slow (2 s), /down/… (503, a provider
    that is down), anything else: the token's fingerprint."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.hits.append(self.path)
                auth = self.headers.get("Authorization", "")
                if self.path.startswith("/always-401"):
                    return self._reply(401, {"error": "invalid_token"})
                if self.path.startswith("/down/"):
                    return self._reply(503, {"error": "temporarily_unavailable"})
                if self.path.startswith("/slow"):
                    time.sleep(2)
                    return self._reply(200, {})
                fingerprint = hashlib.sha256(auth.encode()).hexdigest()[-6:]
                return self._reply(200, {"auth": fingerprint, "path": self.path})

            def _reply(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll: stop() waits for the loop to notice, up to one poll (0.5 s by default).
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
