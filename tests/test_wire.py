"""Plain provider calls are exchanged on this thread's kept connection (integrations/providers/
wire.py), and nothing a caller can see tells that apart from requests: the bytes sent, the
answer (status, reason, headers, encoding, content, cookies), and for every failure the
exception requests raises, with the same verdict on whether the answer may have been lost.

Each case is sent twice to a scripted loopback server (tests/scripted_http.py), once through
the transport with requests' adapter forbidden (so the wire must have done it) and once
through ``requests.request`` itself, and the two are compared.
"""

from __future__ import annotations

import gzip
import os
import socket
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3

from integrations.providers import transport
from integrations.refreshing.single_flight import _answer_lost
from tests.scripted_http import CLOSE, SILENT, Script, ScriptedServer, answer, json_answer
from tests.tls import authority

FORM = {"grant_type": "refresh_token", "refresh_token": "R1"}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture(autouse=True)
def fresh_connections() -> Iterator[None]:
    transport.close_thread_session()
    yield
    transport.close_thread_session()


@pytest.fixture
def no_adapter(monkeypatch) -> None:
    """requests' adapter may not send: what is sent, the wire sent."""
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", _refuse)


def ours(method: str, url: str, **kwargs: Any) -> requests.Response:
    return transport.request(method, url, **kwargs)


def both(server: ScriptedServer, monkeypatch, method: str, path: str, **kwargs: Any):
    """(ours, theirs): the call through the wire, then through requests itself."""
    with monkeypatch.context() as patch:
        patch.setattr(requests.adapters.HTTPAdapter, "send", _refuse)
        mine = ours(method, server.url(path), **kwargs)
    theirs = requests.request(method, server.url(path), **kwargs)
    return mine, theirs


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("sent through requests' adapter")


def spy_on_adapter(monkeypatch) -> list[str]:
    """The URLs requests' adapter sends from now on (it still sends them)."""
    sent: list[str] = []
    real = requests.adapters.HTTPAdapter.send

    def spy(self: Any, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        sent.append(str(request.url))
        return real(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spy)
    return sent


def assert_same_answer(mine: requests.Response, theirs: requests.Response) -> None:
    for name in ("status_code", "reason", "url", "encoding", "content", "text", "ok"):
        assert getattr(mine, name) == getattr(theirs, name), name
    assert list(mine.headers.items()) == list(theirs.headers.items())
    assert mine.cookies.get_dict() == theirs.cookies.get_dict()
    assert mine.history == theirs.history == []
    assert mine.raw.read() == theirs.raw.read() == b""  # both read to the end
    for name in ("status", "reason", "version"):
        assert getattr(mine.raw, name) == getattr(theirs.raw, name), name
    assert list(mine.raw.headers.items()) == list(theirs.raw.headers.items())


# --- what is sent ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        {"method": "POST", "data": FORM, "auth": ("C1", "S1")},
        {"method": "POST", "data": FORM, "headers": {"Accept": "application/json"}},
        {"method": "GET", "params": {"q": "a b", "n": 2}, "headers": {"Authorization": "Bear A1"}},
        {"method": "POST", "json": {"token": "A1"}},
        {"method": "DELETE"},
        {"method": "POST", "headers": {"User-Agent": None}},  # urllib3 adds its own
    ],
    ids=["form+basic", "form+accept", "get+query", "json", "delete", "no-agent"],
)
def test_the_bytes_sent_are_the_bytes_requests_sends(server, monkeypatch, call):
    call = dict(call)
    method = call.pop("method")
    both(server, monkeypatch, method, "/token", timeout=5, **call)

    mine, theirs = server.seen
    assert mine.raw == theirs.raw


# --- what comes back ------------------------------------------------------------------------


def _chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in parts)


BODY = b'{"access_token": "A1", "token_type": "Bearer", "expires_in": 3600}'
ANSWERS = {
    "length": json_answer(BODY),
    "charset": json_answer(BODY, ("Content-Type", "text/plain; charset=ISO-8859-1")),
    "chunked": answer(
        "HTTP/1.1 200 OK",
        [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
        _chunked(BODY[:10], BODY[10:]) + b"0\r\nX-Trailer: yes\r\n\r\n",
    ),
    "gzip": answer(
        "HTTP/1.1 200 OK",
        [("Content-Encoding", "gzip"), ("Content-Length", str(len(gzip.compress(BODY))))],
        gzip.compress(BODY),
    ),
    "deflate": answer(
        "HTTP/1.1 200 OK",
        [("Content-Encoding", "deflate"), ("Content-Length", str(len(zlib.compress(BODY))))],
        zlib.compress(BODY),
    ),
    "to-close": answer("HTTP/1.1 200 OK", [("Connection", "close")], BODY),
    "http10": answer("HTTP/1.0 200 OK", [("Content-Length", str(len(BODY)))], BODY),
    "no-content": answer("HTTP/1.1 204 No Content", [("X-Request", "1")]),
    "continue": b"HTTP/1.1 100 Continue\r\n\r\n" + json_answer(BODY),
    "repeated": json_answer(
        BODY, ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
        ("X-Seen", "one"), ("x-seen", "two"),
    ),
    "folded": answer(
        "HTTP/1.1 400 Bad Request",
        [("Content-Length", str(len(BODY))), ("WWW-Authenticate", 'Bearer e="x",\r\n realm="y"')],
        BODY,
    ),
    "bare-lf": json_answer(BODY).replace(b"\r\n", b"\n", 3),
    "latin1": json_answer(BODY, ("X-Name", "caf\u00e9")),
    "no-reason": answer("HTTP/1.1 429", [("Retry-After", "3"), ("Content-Length", "0")]),
    "odd-lines": answer(
        "HTTP/1.1 503 Service Unavailable",
        [("Content-Length", str(len(BODY))), ("no colon here", "")],
        BODY,
    ).replace(b"no colon here: \r\n", b"no colon here\r\n"),
}


@pytest.mark.parametrize("shape", list(ANSWERS))
def test_an_answer_reads_as_requests_reads_it(server, monkeypatch, shape):
    server.scripts["/token"] = Script([ANSWERS[shape]], then_close=shape in ("to-close", "http10"))

    mine, theirs = both(server, monkeypatch, "POST", "/token", data=FORM, timeout=5)

    assert_same_answer(mine, theirs)


def test_an_answer_to_head_has_no_body(server, monkeypatch):
    server.scripts["/token"] = Script(
        [answer("HTTP/1.1 200 OK", [("Content-Length", "40")])]
    )
    mine, theirs = both(server, monkeypatch, "HEAD", "/token", timeout=5)

    assert_same_answer(mine, theirs)


# --- connections ----------------------------------------------------------------------------


def test_a_thread_keeps_one_connection_for_its_calls(server, no_adapter):
    for _ in range(3):
        assert ours("POST", server.url("/token"), data=FORM, timeout=5).json() == {"ok": True}

    assert [seen.connection for seen in server.seen] == [1, 1, 1]


@pytest.mark.parametrize(
    "shape",
    [
        answer("HTTP/1.1 200 OK", [("Connection", "close"), ("Content-Length", "2")], b"{}"),
        answer("HTTP/1.0 200 OK", [("Content-Length", "2")], b"{}"),
        answer("HTTP/1.1 200 OK", [], b"{}"),  # no length: the body runs to the close
        answer("HTTP/1.1 200 OK", [("Content-Length", "2")], b"{}extra"),  # bytes beyond it
    ],
    ids=["connection-close", "http10", "no-length", "extra-bytes"],
)
def test_a_connection_the_answer_ends_is_not_reused(server, no_adapter, shape):
    server.scripts["/token"] = Script([shape], then_close=b"Content-Length" not in shape)

    for _ in range(2):
        assert ours("POST", server.url("/token"), data=FORM, timeout=5).content == b"{}"

    assert [seen.connection for seen in server.seen] == [1, 2]


def test_a_connection_the_provider_closed_while_idle_is_replaced_and_the_call_sent_once(
    server, no_adapter
):
    server.scripts["/first"] = Script([json_answer()], then_close=True)  # closes, quietly
    ours("POST", server.url("/first"), data=FORM, timeout=5)
    assert server.ended[1].wait(5)
    response = ours("POST", server.url("/token"), data=FORM, timeout=5)

    assert response.json() == {"ok": True}
    assert [(seen.raw.split(b" ")[1], seen.connection) for seen in server.seen] == [
        (b"/first", 1),
        (b"/token", 2),
    ]


def test_a_forked_child_opens_its_own_connection(server, no_adapter):
    ours("POST", server.url("/token"), data=FORM, timeout=5)
    child = os.fork()
    if child == 0:  # the child: one call, on a connection of its own
        try:
            ours("POST", server.url("/token"), data=FORM, timeout=5)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    ours("POST", server.url("/token"), data=FORM, timeout=5)

    assert [seen.connection for seen in server.seen] == [1, 2, 1]


# --- failures -------------------------------------------------------------------------------


FAILURES = {
    # request sent, then no answer: the provider may have acted on it
    "closed-unanswered": (Script(CLOSE), requests.ConnectionError, True),
    "not-http": (Script([b"HELLO\r\n\r\n"], then_close=True), requests.ConnectionError, True),
    "bad-status": (
        Script([b"HTTP/1.1 OK fine\r\n\r\n"], then_close=True), requests.ConnectionError, True
    ),
    "body-cut-short": (
        Script([answer("HTTP/1.1 200 OK", [("Content-Length", "100")], b"{}")], then_close=True),
        requests.exceptions.ChunkedEncodingError,
        True,
    ),
    "chunks-cut-short": (
        Script(
            [answer("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"10\r\nabc")],
            then_close=True,
        ),
        requests.exceptions.ChunkedEncodingError,
        True,
    ),
    "bad-gzip": (
        Script(
            [answer("HTTP/1.1 200 OK", [("Content-Encoding", "gzip"), ("Content-Length", "3")])
             + b"xyz"]
        ),
        requests.exceptions.ContentDecodingError,
        False,
    ),
    "read-timeout": (Script(SILENT), requests.ReadTimeout, True),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failure_raises_what_requests_raises(server, monkeypatch, case):
    script, kind, lost = FAILURES[case]
    server.scripts["/token"] = script
    errors = []
    for wire in (True, False):
        with monkeypatch.context() as patch:
            if wire:
                patch.setattr(requests.adapters.HTTPAdapter, "send", _refuse)
            call = transport.request if wire else requests.request
            with pytest.raises(requests.RequestException) as raised:
                call("POST", server.url("/token"), data=FORM, timeout=0.5)
        errors.append(raised.value)

    mine, theirs = errors
    assert type(mine) is type(theirs) is kind
    assert _answer_lost(mine) is _answer_lost(theirs) is lost
    assert mine.request is not None and mine.request.url == server.url("/token")
    assert len(server.seen) == 2, "each sent exactly once"


def test_a_refused_connection_sent_nothing(no_adapter):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as raised:
        ours("POST", f"http://127.0.0.1:{port}/token", data=FORM, timeout=5)

    assert not isinstance(raised.value, requests.Timeout)
    assert _answer_lost(raised.value) is False
    assert "R1" not in str(raised.value)


def test_a_timeout_noted_by_observing(server, no_adapter):
    server.scripts["/token"] = Script(SILENT)
    with transport.observing() as calls, pytest.raises(requests.ReadTimeout):
        ours("POST", server.url("/token"), data=FORM, timeout=0.3)

    assert [(call.status, call.timed_out) for call in calls] == [(None, True)]


def test_a_timeout_pair_is_a_connect_and_a_read_timeout(server, no_adapter):
    server.scripts["/token"] = Script(SILENT)
    with pytest.raises(requests.ReadTimeout, match=r"read timeout=0\.3"):
        ours("POST", server.url("/token"), data=FORM, timeout=(5, 0.3))


def test_what_it_does_not_handle_goes_through_requests(server, monkeypatch):
    sent = spy_on_adapter(monkeypatch)
    ours("POST", server.url("/token"), data=FORM, timeout=urllib3.Timeout(5))  # timeout object
    # A header value beyond Latin-1: requests' own error, and nothing sent.
    with pytest.raises(UnicodeEncodeError):
        ours("POST", server.url("/token"), data=FORM, headers={"X-Name": "\u0101"}, timeout=5)
    with pytest.raises(UnicodeEncodeError):
        requests.post(server.url("/token"), data=FORM, headers={"X-Name": "\u0101"}, timeout=5)

    assert len(sent) == 3
    assert len(server.seen) == 1


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path):
    return authority(tmp_path, ["127.0.0.1", "localhost"])


def test_tls_with_the_ca_bundle_requests_would_use(tls, monkeypatch, no_adapter):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    with ScriptedServer(tls=tls.server) as server:
        for _ in range(2):
            assert ours("POST", server.url("/token"), data=FORM, timeout=5).json() == {"ok": True}

    assert [seen.connection for seen in server.seen] == [1, 1]


def test_tls_refuses_a_certificate_nobody_vouches_for_before_sending(tls, monkeypatch, no_adapter):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with ScriptedServer(tls=tls.server) as server, pytest.raises(
        requests.exceptions.SSLError
    ) as raised:
        ours("POST", server.url("/token"), data=FORM, timeout=5)  # the default bundle

    assert server.seen == []
    assert _answer_lost(raised.value) is False


def test_tls_refuses_a_certificate_for_another_host(tmp_path, monkeypatch, no_adapter):
    other = authority(tmp_path, ["provider.test"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other.ca_file))
    with ScriptedServer(tls=other.server) as server, pytest.raises(
        requests.exceptions.SSLError
    ):
        ours("POST", server.url("/token"), data=FORM, timeout=5)

    assert server.seen == []


def test_tls_without_verification_goes_through_requests_and_warns(tls, monkeypatch):
    sent = spy_on_adapter(monkeypatch)
    with ScriptedServer(tls=tls.server) as server, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ours("POST", server.url("/token"), data=FORM, timeout=5, verify=False)

    assert sent == [server.url("/token")]
    assert any(issubclass(w.category, urllib3.exceptions.InsecureRequestWarning) for w in seen)
