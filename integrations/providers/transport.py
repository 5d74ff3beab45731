"""Provider calls made by Python Social Auth's backends reuse their connections.

social-core sends every provider call (token exchange, refresh, user info, revocation) through
``BaseAuth.request``, which calls ``requests.request``: a new ``Session``, a new TCP (and TLS)
connection, and a fresh reading of the environment's proxy settings for every call. For one
login that is nothing; for a background refresh of thousands of tokens it was a third of the
CPU per refresh. There is no setting for the session social-core uses, so at start-up its
module's ``requests`` is given this stand-in, identical except for ``request``, which uses one
session per thread:

- connections are kept alive between calls of the same thread (a thread idle for longer than
  ``IDLE_SECONDS`` starts over, so a web worker does not reuse a connection the provider has
  long since closed);
- cookies are never carried from one call to the next: each call starts with an empty jar, as
  ``requests.request``'s own fresh session does (a provider's cookie set for one user's token
  call must not ride along with another user's);
- the environment's proxy, no_proxy and CA bundle settings are read once per origin, not on
  every call (the environment does not change under a running process);
- a plain call (a form or JSON body, a query, Basic auth: what social-core sends) is prepared
  without requests' general-purpose merging (integrations/providers/prepare.py), into the very
  request requests would have built, and exchanged on the thread's kept connection
  (integrations/providers/wire.py: the same bytes, the answer and errors requests gives;
  anything it does not handle goes through the session's adapter, as ``Session.send`` sends
  it), redirects followed by requests' own ``resolve_redirects``; only the copy of the
  answer's cookies into the session's jar, emptied after the call anyway, is left out.

Everything else (timeouts, the errors social-core maps, TLS verification, PROXIES) is as
before: the stand-in forwards every other name to ``requests`` itself.

Inside ``observing()``, each call is also noted (status, time, Retry-After): the background
refresh adapts its pace to the provider from these (integrations/background/throttle.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.cookies import extract_cookies_to_jar

from integrations.providers.prepare import prepare
from integrations.providers.wire import Wire

# A kept connection unused for this long is not trusted any more (providers close idle
# keep-alive connections after 5 to 60 seconds; a closed one fails the next call).
IDLE_SECONDS = 4.0

_local = threading.local()


def _forget_inherited_connections() -> None:
    """In a forked child: start without the parent's sessions. Its kept connections are the
    parent's too; a call of the child's on one would mix the two processes' exchanges."""
    global _local
    _local = threading.local()  # (not closed: the parent goes on using them)


os.register_at_fork(after_in_child=_forget_inherited_connections)


class _ThreadSession(requests.Session):
    """One thread's session: connections kept, cookies dropped, environment read once."""

    def __init__(self) -> None:
        super().__init__()
        self.last_used = time.monotonic()
        self._environment: dict[tuple[Any, ...], Any] = {}
        self.wire = Wire()

    def close(self) -> None:
        self.wire.close()
        super().close()

    def merge_environment_settings(  # type: ignore[override]
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if proxies or not isinstance(verify, bool | None) or not isinstance(cert, str | None):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


def thread_session() -> _ThreadSession:
    """This thread's session for provider calls (a new one after IDLE_SECONDS unused)."""
    session: _ThreadSession | None = getattr(_local, "session", None)
    now = time.monotonic()
    if session is not None and now - session.last_used > IDLE_SECONDS:
        session.close()
        session = None
    if session is None:
        session = _ThreadSession()
        _local.session = session
    session.last_used = now
    return session


def close_thread_session() -> None:
    """Close this thread's kept connections (a worker thread about to end)."""
    session = getattr(_local, "session", None)
    if session is not None:
        session.close()
        _local.session = None


@dataclass(frozen=True)
class Call:
    """What one provider call said about the provider's load (for backpressure): its HTTP
    status (None when no answer came), how long the answer took, the Retry-After it asked
    for (seconds), and whether it timed out."""

    status: int | None
    seconds: float
    retry_after: float | None = None
    timed_out: bool = False

    @property
    def overloaded(self) -> bool:
        """429, a 5xx, a timeout or no answer: the provider could not take the call."""
        return self.status is None or self.status == 429 or self.status >= 500


@contextmanager
def observing() -> Iterator[list[Call]]:
    """Collect the provider calls this thread makes inside the block."""
    calls: list[Call] = []
    previous = getattr(_local, "calls", None)
    _local.calls = calls
    try:
        yield calls
    finally:
        _local.calls = previous


def request(method: str, url: str, **kwargs: Any) -> requests.Response:
    """``requests.request``, on this thread's session, with an empty cookie jar."""
    session = thread_session()
    session.cookies.clear()
    started = time.monotonic()
    calls: list[Call] | None = getattr(_local, "calls", None)
    try:
        response = _send_prepared(session, method, url, kwargs)
        if response is None:  # (not `or`: a Response is falsy when its status is >= 400)
            response = session.request(method=method, url=url, **kwargs)
    except requests.RequestException as error:
        if calls is not None:
            timed_out = isinstance(error, requests.Timeout) or isinstance(
                error.args[0] if error.args else None, urllib3.exceptions.ReadTimeoutError
            )  # (requests' timeout while reading a body is a ConnectionError around it)
            calls.append(Call(None, time.monotonic() - started, timed_out=timed_out))
        raise
    finally:
        session.cookies.clear()
        session.last_used = time.monotonic()
    if calls is not None:
        calls.append(Call(response.status_code, session.last_used - started, retry_after(response)))
    return response


_PREPARE_KEYS = frozenset({"headers", "data", "json", "auth", "params"})
_SEND_KEYS = frozenset({"timeout", "proxies", "verify"})


def _send_prepared(
    session: _ThreadSession, method: str, url: str, kwargs: dict[str, Any]
) -> requests.Response | None:
    """Send a plain call prepared cheaply (integrations/providers/prepare.py), exactly as
    ``Session.request`` would send it; None when it is not plain (no proxy, no client
    certificate, a shape `prepare` knows)."""
    verify = kwargs.get("verify", True)
    if not kwargs.keys() <= _PREPARE_KEYS | _SEND_KEYS or kwargs.get("proxies"):
        return None
    if not isinstance(verify, bool):
        return None
    environment = session.merge_environment_settings(url, {}, None, verify, None)
    if environment["proxies"] or environment["cert"]:
        return None
    prepared = prepare(
        session, method, url, **{key: kwargs[key] for key in _PREPARE_KEYS if key in kwargs}
    )
    if prepared is None:
        return None
    return _send(
        session,
        prepared,
        timeout=kwargs.get("timeout"),
        verify=environment["verify"],  # REQUESTS_CA_BUNDLE's, when it is set
        cert=None,
        stream=False,
        proxies={},
    )


def _send(
    session: _ThreadSession, prepared: requests.PreparedRequest, **send: Any
) -> requests.Response:
    """``Session.send(prepared, allow_redirects=True, **send)`` for a call without hooks whose
    cookies are dropped anyway: the exchange on this thread's kept connection (wire.py: the
    answer and errors requests gives, for a fraction of the CPU), else the adapter's own send
    (its connection pool, TLS, timeouts and errors), and requests' own redirect handling when
    the answer is a redirect. What it leaves out, copying the answer's cookies into a jar
    that is emptied after the call, cost a tenth of a token call's CPU."""
    started = time.perf_counter()
    adapter = session.get_adapter(url=str(prepared.url))
    response = None
    if type(adapter) is requests.adapters.HTTPAdapter:  # not one a site mounted itself
        response = session.wire.send(
            prepared, adapter, timeout=send["timeout"], verify=send["verify"]
        )
    if response is None:  # (not `or`: a Response is falsy when its status is >= 400)
        response = adapter.send(prepared, **send)
        # (a response from the wire carries its own elapsed time, up to its head)
        response.elapsed = timedelta(seconds=time.perf_counter() - started)
    if response.is_redirect:
        extract_cookies_to_jar(session.cookies, prepared, response.raw)
        history = list(session.resolve_redirects(response, prepared, **send))
        if history:
            history.insert(0, response)
            response = history.pop()
            response.history = history
    response.content  # noqa: B018 (read now, as Session.send does without stream)
    return response


def retry_after(response: requests.Response) -> float | None:
    """The seconds a Retry-After header asks for (RFC 9110 §10.2.3: seconds or an HTTP
    date), or None when there is none or it makes no sense."""
    value = response.headers.get("Retry-After")
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:  # whatever a provider sends, noting its answer must never fail the call
        moment = parsedate_to_datetime(value)
        if moment.tzinfo is None:
            return None
        return max(0.0, moment.timestamp() - time.time())
    except Exception:
        return None


class PooledRequests:
    """``requests``, but ``request`` reuses this thread's connections."""

    request = staticmethod(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)


def install() -> None:
    """Give social-core's backends the pooled ``requests`` (idempotent)."""
    from social_core.backends import base

    if not isinstance(base.requests, PooledRequests):
        base.requests = PooledRequests()  # type: ignore[assignment]
