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
import threading
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


def both(monkeypatch, method: str, url: str, **kwargs: Any):
    """(ours, theirs): the call through the wire, then through requests itself; each is the
    answer, or the exception raised."""
    outcomes: list[Any] = []
    for wire in (True, False):
        with monkeypatch.context() as patch:
            if wire:
                patch.setattr(requests.adapters.HTTPAdapter, "send", _refuse)
            call = transport.request if wire else requests.request
            try:
                outcomes.append(call(method, url, **kwargs))
            except requests.RequestException as error:
                outcomes.append(error)
    return outcomes[0], outcomes[1]


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


def wrapped(error: BaseException, depth: int = 0) -> list[Any]:
    """The exception's type and, in order, those of the exceptions it wraps (in its args or
    as an urllib3 error's reason), all the way down."""
    inner = [arg for arg in error.args if isinstance(arg, BaseException)]
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException) and reason not in inner:
        inner.append(reason)
    if depth > 5:
        return [type(error)]
    return [type(error), [wrapped(arg, depth + 1) for arg in inner]]


def assert_same_outcome(mine: Any, theirs: Any) -> None:
    """The same answer, or the same exception: type, what it wraps, whether the request is
    attached, and single_flight's verdict on whether the answer may have been lost."""
    if isinstance(theirs, requests.RequestException):
        assert isinstance(mine, requests.RequestException), (theirs, mine)
        assert wrapped(mine) == wrapped(theirs)
        assert str(mine) == str(theirs)
        assert (mine.request is None) == (theirs.request is None)
        assert _answer_lost(mine) is _answer_lost(theirs)
        return
    assert not isinstance(mine, Exception), f"requests answered, the wire raised {mine!r}"
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
    both(monkeypatch, method, server.url("/token"), timeout=5, **call)

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


EMPTY_BODY = b"Content-Length: 0\r\n\r\n"
# Answers as odd as a provider may send, each read as requests reads it (or failing as it
# fails): (the answer's bytes, whether the provider then closes the connection).
ODD = {
    "http2-status-line": (b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    "http09-version": (b"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\n{}", True),
    "plus-status": (b"HTTP/1.1 +200 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    "early-hints": (b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + json_answer(), False),
    "switching": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", True),
    "head-cut-by-close": (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n", True),
    "nothing": (b"", True),
    "long-status-line": (b"HTTP/1.1 200 " + b"R" * 70000 + b"\r\n\r\n", False),
    "long-header-line": (b"HTTP/1.1 200 OK\r\nX-L: " + b"a" * 65530 + b"\r\n\r\n", False),
    "too-many-headers": (b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", False),
    # http.client counts the empty line that ends the head: 99 header lines at most
    "100-headers": (b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 99 + EMPTY_BODY, False),
    "99-headers": (b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 98 + EMPTY_BODY, False),
    "colonless-line": (b"HTTP/1.1 200 OK\r\nbogus\r\nContent-Length: 2\r\n\r\n{}", True),
    "space-before-colon": (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\nX-B: 1\r\n\r\n{}", True),
    "bare-cr": (b"HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 2\r\n\r\n{}", True),
    "trailing-space": (b"HTTP/1.1 200 OK\r\nX-A: v  \r\nContent-Length: 2\r\n\r\n{}", False),
    "nbsp": (b"HTTP/1.1 200 OK\r\nX-A: v\xa0\r\nContent-Length: 2\r\n\r\n{}", False),
    "latin1-name": (b"HTTP/1.1 200 OK\r\nX-\xc4: 1\r\nContent-Length: 2\r\n\r\n{}", True),
    "length-plus": (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", False),
    "length-twice": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-length: 02\r\n\r\n{}", False
    ),
    "lengths-disagree": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-length: 3\r\n\r\n{}", False
    ),
    "length-negative": (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}", True),
    "length-short-of-close": (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}x", True),
    "chunked-twice": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        True,
    ),
    "gzip-chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", True
    ),
    "chunks-end-at-close": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n", True
    ),
    "no-content-chunked": (
        b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", True
    ),
    "coding-with-space": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip \r\nContent-Length: 3\r\n\r\nabc", False
    ),
    "proxy-keep-alive-1.0": (
        b"HTTP/1.0 200 OK\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\r\n{}", False
    ),
}


@pytest.mark.parametrize("shape", list(ANSWERS) + list(ODD))
def test_an_answer_reads_as_requests_reads_it(server, monkeypatch, shape):
    data, then_close = ODD.get(shape) or (ANSWERS[shape], shape in ("to-close", "http10"))
    server.scripts["/token"] = Script([data], then_close=then_close)

    mine, theirs = both(monkeypatch, "POST", server.url("/token"), data=FORM, timeout=0.5)

    assert_same_outcome(mine, theirs)
    assert len(server.seen) == 2, "each sent exactly once"


def test_a_redirect_whose_body_does_not_decode_is_followed_as_requests_follows_it(
    server, monkeypatch
):
    server.scripts["/moved"] = Script(
        [answer(
            "HTTP/1.1 302 Found",
            [("Location", "/token"), ("Content-Encoding", "gzip"), ("Content-Length", "3")],
            b"xyz",
        )]
    )
    sent = spy_on_adapter(monkeypatch)
    mine = ours("GET", server.url("/moved"), timeout=5)  # the redirect itself: requests'
    theirs = requests.get(server.url("/moved"), timeout=5)

    assert sent[0] == server.url("/token"), "the first answer came through the wire"
    assert mine.json() == theirs.json() == {"ok": True}
    assert [answer.status_code for answer in mine.history] == [302]
    assert [answer.status_code for answer in theirs.history] == [302]
    assert [seen.raw.split(b" ")[1] for seen in server.seen] == [b"/moved", b"/token"] * 2


def test_an_answer_to_head_has_no_body(server, monkeypatch):
    server.scripts["/token"] = Script(
        [answer("HTTP/1.1 200 OK", [("Content-Length", "40")])]
    )
    mine, theirs = both(monkeypatch, "HEAD", server.url("/token"), timeout=5)

    assert_same_outcome(mine, theirs)


def test_an_early_answer_while_the_request_is_still_sent_is_read(monkeypatch):
    """A provider may answer (413, 401) and stop reading before a large body is all sent."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def answer_early() -> None:
            for _ in range(2):
                client, _ = listener.accept()
                with client:
                    client.recv(1024)
                    client.sendall(
                        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n"
                    )
                    client.shutdown(socket.SHUT_WR)

        serving = threading.Thread(target=answer_early, daemon=True)
        serving.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/token"
        large = {"assertion": "x" * 8_000_000}
        mine, theirs = both(monkeypatch, "POST", url, data=large, timeout=5)
        serving.join(5)

    assert mine.status_code == theirs.status_code == 413


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
        # chunked for urllib3, not for http.client, which lets the connection go
        answer(
            "HTTP/1.1 200 OK", [("Transfer-Encoding", "gzip, chunked")], b"2\r\n{}\r\n0\r\n\r\n"
        ),
    ],
    ids=["connection-close", "http10", "no-length", "extra-bytes", "gzip-chunked"],
)
def test_a_connection_the_answer_ends_is_not_reused(server, no_adapter, shape):
    server.scripts["/token"] = Script(
        [shape], then_close=b"Content-Length" not in shape and b"chunked" not in shape
    )

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
        code = 1
        try:
            ours("POST", server.url("/token"), data=FORM, timeout=5)
            code = 0
        finally:
            os._exit(code)
    for _ in range(500):  # up to 5 s, then the child is stopped: never a hung suite
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.01)
    else:
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the child did not finish")
    ours("POST", server.url("/token"), data=FORM, timeout=5)

    assert os.waitstatus_to_exitcode(status) == 0
    assert [seen.connection for seen in server.seen] == [1, 2, 1]


# --- failures -------------------------------------------------------------------------------


FAILURES = {
    # the request went out, then no answer: the provider may have acted on it
    "closed-unanswered": Script(CLOSE),
    "not-http": Script([b"HELLO\r\n\r\n"], then_close=True),
    "bad-status": Script([b"HTTP/1.1 OK fine\r\n\r\n"], then_close=True),
    "body-cut-short": Script(
        [answer("HTTP/1.1 200 OK", [("Content-Length", "100")], b"{}")], then_close=True
    ),
    "chunks-cut-short": Script(
        [answer("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"10\r\nabc")],
        then_close=True,
    ),
    "bad-chunk-size": Script(
        [answer("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"zz\r\nabc")],
        then_close=True,
    ),
    "bad-chunk-size-later": Script(
        [answer("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"2\r\n{}\r\nzz\r\n")],
        then_close=True,
    ),
    "not-http-kept-open": Script([b"SSH-2.0-provider\r\n"]),  # the wrong port: at once
    "head-line-too-long-kept-open": Script([b"HTTP/1.1 200 OK\r\nX-L: " + b"a" * 70000]),
    "bad-gzip": Script(
        [answer("HTTP/1.1 200 OK", [("Content-Encoding", "gzip"), ("Content-Length", "3")])
         + b"xyz"]
    ),
    "read-timeout": Script(SILENT),
    "timeout-in-body": Script([answer("HTTP/1.1 200 OK", [("Content-Length", "9")], b"{}")]),
    "timeout-in-chunks": Script(
        [answer("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"9\r\n{}")]
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failure_raises_what_requests_raises(server, monkeypatch, case):
    server.scripts["/token"] = FAILURES[case]

    mine, theirs = both(monkeypatch, "POST", server.url("/token"), data=FORM, timeout=0.5)

    assert isinstance(theirs, requests.RequestException)
    assert_same_outcome(mine, theirs)
    # The request went out and no full answer came: the provider may have acted on it. (A
    # body that fails to decode did come in full.)
    assert _answer_lost(mine) is (case != "bad-gzip")
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
    server.scripts["/silent"] = Script(SILENT)
    server.scripts["/halfway"] = FAILURES["timeout-in-body"]
    with transport.observing() as calls:
        with pytest.raises(requests.ReadTimeout):
            ours("POST", server.url("/silent"), data=FORM, timeout=0.3)
        with pytest.raises(requests.ConnectionError):
            ours("POST", server.url("/halfway"), data=FORM, timeout=0.3)

    assert [(call.status, call.timed_out) for call in calls] == [(None, True), (None, True)]


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


def test_a_ca_bundle_gone_is_requests_own_error_even_on_a_kept_connection(
    tls, tmp_path, monkeypatch, no_adapter
):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(tls.ca_file.read_bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with ScriptedServer(tls=tls.server) as server:
        ours("POST", server.url("/token"), data=FORM, timeout=5)
        bundle.unlink()
        with pytest.raises(OSError, match="Could not find a suitable TLS CA certificate bundle"):
            ours("POST", server.url("/token"), data=FORM, timeout=5)

    assert len(server.seen) == 1, "nothing sent without the trust requests would have used"


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


def test_a_tls_handshake_that_never_comes_times_out_as_with_requests(server, monkeypatch):
    silent = server.url("/token").replace("http://", "https://")  # TCP accepted, no TLS

    mine, theirs = both(monkeypatch, "POST", silent, data=FORM, timeout=0.3)

    assert_same_outcome(mine, theirs)
    assert type(mine) is requests.ReadTimeout
    assert server.seen == []


def test_tls_without_verification_goes_through_requests_and_warns(tls, monkeypatch):
    sent = spy_on_adapter(monkeypatch)
    with ScriptedServer(tls=tls.server) as server, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ours("POST", server.url("/token"), data=FORM, timeout=5, verify=False)

    assert sent == [server.url("/token")]
    assert any(issubclass(w.category, urllib3.exceptions.InsecureRequestWarning) for w in seen)
