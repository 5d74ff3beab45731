"""Provider calls through social-core reuse connections, carry no cookies from call to call,
are prepared exactly as requests prepares them, and are sent exactly once.

A loopback HTTP server records what arrives (method, path, headers, body, client port);
`prepare` is compared with requests' own ``Session.prepare_request`` on every shape
social-core sends, and must give up (None) on anything else.
"""

from __future__ import annotations

import email.utils
import http.server
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests
from requests.auth import AuthBase, HTTPBasicAuth

from integrations.providers import transport
from integrations.providers.prepare import prepare


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers by path: /token 200 JSON (with a cookie), /error 500, /busy 429 with
    Retry-After, /moved 307 to /token, /slow after 1 s."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, Any]]] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Recorder.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": self.rfile.read(length),
                "port": self.client_address[1],
            }
        )

    def _answer(self) -> None:
        self._record()
        path = self.path.split("?")[0]
        if path == "/slow":
            time.sleep(1)
        if path == "/moved":
            self.send_response(307)
            self.send_header("Location", "/token")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = {"/error": 500, "/busy": 429}.get(path, 200)
        body = json.dumps({"ok": status == 200}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=someone-elses; Path=/")
        if path == "/busy":
            self.send_header("Retry-After", "7")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.daemon_threads = True
    report = httpd.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        # A client that gave up (the timeout tests) breaks the pipe of the answer: not news.
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            report(request, client_address)

    httpd.handle_error = handle_error  # type: ignore[method-assign]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def fresh(server: str) -> Iterator[None]:
    Recorder.seen = []
    transport.close_thread_session()
    yield
    transport.close_thread_session()


def test_social_core_sends_through_the_pooled_transport():
    from social_core.backends import base

    assert isinstance(base.requests, transport.PooledRequests)
    assert base.requests.HTTPError is requests.HTTPError  # every other name is requests'


def test_calls_of_a_thread_reuse_one_connection_and_carry_no_cookies(server):
    for _ in range(5):
        response = transport.request("POST", f"{server}/token", data={"a": "1"}, timeout=5)
        assert response.json() == {"ok": True}

    assert len(Recorder.seen) == 5
    assert len({call["port"] for call in Recorder.seen}) == 1, "one kept connection"
    assert all("Cookie" not in call["headers"] for call in Recorder.seen)


def test_a_connection_idle_too_long_is_not_reused(server, monkeypatch):
    transport.request("GET", f"{server}/token", timeout=5)
    monkeypatch.setattr(transport, "IDLE_SECONDS", -1.0)
    transport.request("GET", f"{server}/token", timeout=5)

    assert len({call["port"] for call in Recorder.seen}) == 2


@pytest.mark.parametrize("path", ["/error", "/busy"])
def test_an_error_answer_is_returned_and_the_call_is_sent_once(server, path):
    response = transport.request("POST", f"{server}{path}", data={"grant_type": "x"}, timeout=5)

    assert response.status_code in (500, 429)
    assert len(Recorder.seen) == 1, "a refresh token sent twice may be a grant lost"


def test_a_redirect_is_followed_as_requests_follows_it(server):
    response = transport.request("POST", f"{server}/moved", data={"a": "1"}, timeout=5)

    assert response.status_code == 200
    assert [call["path"] for call in Recorder.seen] == ["/moved", "/token"]
    assert Recorder.seen[1]["method"] == "POST"  # 307 keeps the method and body
    assert Recorder.seen[1]["body"] == b"a=1"
    assert [answer.status_code for answer in response.history] == [307]


def test_an_answer_carries_what_requests_gives(server):
    ours = transport.request("POST", f"{server}/token", data={"a": "1"}, timeout=5)
    theirs = requests.request("POST", f"{server}/token", data={"a": "1"}, timeout=5)

    for name in ("status_code", "url", "reason", "encoding", "content", "history", "ok"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert {key: value for key, value in ours.headers.items() if key != "Date"} == {
        key: value for key, value in theirs.headers.items() if key != "Date"
    }
    # The answer's own cookies are readable on it; they only never reach the next call.
    assert ours.cookies.get("session") == theirs.cookies.get("session") == "someone-elses"
    assert ours.elapsed.total_seconds() > 0
    assert ours.request.body == theirs.request.body == "a=1"


def test_observing_notes_status_time_and_retry_after(server):
    with transport.observing() as calls:
        transport.request("GET", f"{server}/token", timeout=5)
        transport.request("GET", f"{server}/busy", timeout=5)
        with pytest.raises(requests.Timeout):
            transport.request("GET", f"{server}/slow", timeout=0.2)
    transport.request("GET", f"{server}/token", timeout=5)  # outside: not noted

    assert [(call.status, call.retry_after, call.timed_out) for call in calls] == [
        (200, None, False),
        (429, 7.0, False),
        (None, None, True),
    ]
    assert [call.overloaded for call in calls] == [False, True, True]
    assert calls[2].seconds >= 0.2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("\u00b2", None),  # a digit to str.isdigit, not to float()
        ("Thu, 99 Foo 2026", None),
        (60, pytest.approx(60, abs=2)),  # an HTTP date a minute ahead
        (-60, 0.0),  # a date already past
    ],
)
def test_retry_after_in_seconds_or_as_a_date(header, seconds):
    response = requests.Response()
    if isinstance(header, int):
        header = email.utils.formatdate(time.time() + header, usegmt=True)
    if header is not None:
        response.headers["Retry-After"] = header
    assert transport.retry_after(response) == seconds


# --- prepare: the very request requests would build ----------------------------------------

URL = "https://provider.example/oauth2/token"
SHAPES: dict[str, dict[str, Any]] = {
    "refresh form, client in the body": {
        "method": "POST",
        "url": URL,
        "headers": {"Accept": "application/json", "User-Agent": "social-auth-7.0"},
        "data": {"grant_type": "refresh_token", "refresh_token": "R1", "client_id": "c"},
    },
    "basic auth as a tuple": {"method": "POST", "url": URL, "data": {"a": "1"}, "auth": ("c", "s")},
    "basic auth object": {"method": "POST", "url": URL, "data": {"a": "1"},
                          "auth": HTTPBasicAuth("c", "s é")},
    "json body": {"method": "POST", "url": URL, "json": {"token": "R1", "n": [1, 2]},
                  "headers": {"Content-Type": "application/json"}},
    "json body, no content type given": {"method": "POST", "url": URL, "json": {"a": None}},
    "query on a url with one": {"method": "GET", "url": f"{URL}?v=2",
                                "params": {"access_token": "A1", "fields": "id,name"}},
    "query with lists, numbers and None": {"method": "GET", "url": URL,
                                           "params": {"a": ["1", "2"], "b": 3, "c": None}},
    "a header removed with None": {"method": "GET", "url": URL,
                                   "headers": {"Accept-Encoding": None, "X-Id": "7"}},
    "bytes header and values": {"method": "POST", "url": URL, "headers": {"X-Raw": b"v"},
                                "data": {"k": b"v\xff", "u": "naïve value & more=1"}},
    "POST without a body": {"method": "POST", "url": URL},
    "DELETE, lower case": {"method": "delete", "url": URL, "data": {"token": "A1"}},
    "all values None": {"method": "POST", "url": URL, "data": {"a": None}},
    "data and json: data wins": {"method": "POST", "url": URL, "data": {"a": "1"},
                                 "json": {"b": 2}},
}


def as_requests_prepares(session: requests.Session, call: dict[str, Any]) -> Any:
    return session.prepare_request(requests.Request(**call))


def summary(prepared: Any) -> tuple[Any, ...]:
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return prepared.method, prepared.url, list(prepared.headers.items()), body


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_prepare_builds_exactly_what_requests_builds(shape):
    session = transport.thread_session()
    call = SHAPES[shape]

    ours = prepare(session, **call)

    assert ours is not None
    assert summary(ours) == summary(as_requests_prepares(session, call))


class TokenInHeader(AuthBase):
    def __call__(self, request: Any) -> Any:
        request.headers["X-Token"] = "A1"
        return request


@pytest.mark.parametrize(
    "call",
    [
        {"method": "GET", "url": "https://provider.example/a path"},
        {"method": "GET", "url": "https://bücher.example/token"},
        {"method": "GET", "url": "https://user:pw@provider.example/token"},
        {"method": "GET", "url": "https://provider.example/token#part"},
        {"method": "GET", "url": "https://PROVIDER.example/token"},
        {"method": "GET", "url": f"{URL}?", "params": {}},
        {"method": "POST", "url": URL, "data": "raw=body"},
        {"method": "POST", "url": URL, "data": {"a": {"nested": 1}}},
        {"method": "POST", "url": URL, "auth": TokenInHeader()},
        {"method": "POST", "url": URL, "headers": {"X-Evil": "a\r\nInjected: 1"}},
        {"method": "POST", "url": URL, "headers": {"X-Lead": " space"}},
        {"method": "POST", "url": URL, "json": {"n": float("nan")}},
        {"method": "POST", "url": URL, "files": {"f": b"x"}},
    ],
    ids=[
        "space in path", "non-ASCII host", "user info", "fragment", "upper-case host",
        "empty query", "string body", "nested value", "other auth", "header injection",
        "leading space", "NaN in JSON", "files",
    ],
)
def test_prepare_leaves_anything_else_to_requests(call):
    assert prepare(transport.thread_session(), **call) is None


def test_a_header_requests_refuses_is_still_refused(server):
    with pytest.raises(requests.exceptions.InvalidHeader):
        transport.request("GET", f"{server}/token", headers={"X-Evil": "a\r\nInjected: 1"})
    assert Recorder.seen == []


def test_a_netrc_entry_for_the_host_goes_through_requests(server, tmp_path, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret-from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    from integrations.providers import prepare as prepare_module

    prepare_module._netrc_has.cache_clear()
    try:
        assert prepare(transport.thread_session(), "GET", f"{server}/token") is None
        transport.request("GET", f"{server}/token", timeout=5)
    finally:
        prepare_module._netrc_has.cache_clear()
    assert Recorder.seen[0]["headers"]["Authorization"].startswith("Basic ")
