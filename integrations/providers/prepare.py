"""Prepare a provider call the way requests would, without its general-purpose cost, for the
shapes social-core sends: a form or JSON body, a query, Basic auth, a few headers.

On Python 3.11, ``Session.prepare_request`` was about 40% of a token call's CPU: it merges
session and request settings through runtime-checkable Protocols (``isinstance`` against a
``typing.Protocol`` is slow before 3.12), parses and re-quotes the URL, and encodes the body
for every possible input. `prepare` builds the same ``PreparedRequest`` (the same method, URL,
headers in the same order, body and auth) directly, and returns None for anything else, which
then goes through requests in full: a URL requests would rewrite, a body that is not a
mapping of plain values, an auth object other than Basic, a header requests would refuse, a
netrc entry for the host. tests/test_transport.py compares the two on every shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import requests
from requests._internal_utils import HEADER_VALIDATORS
from requests.auth import HTTPBasicAuth
from requests.compat import json as jsonlib  # type: ignore[attr-defined]  # as requests
from requests.cookies import RequestsCookieJar
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import get_netrc_auth

_PLAIN = (str, bytes, int, float)


@lru_cache(maxsize=512)
def _as_requests_would(url: str) -> bool:
    """Whether requests sends `url` unchanged (no re-quoting, IDNA, user info, fragment)."""
    if "@" in url or "#" in url or not url.isascii():
        return False
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except requests.RequestException:
        return False
    return prepared.url == url


@lru_cache(maxsize=512)
def _netrc_has(origin: str) -> bool:
    return get_netrc_auth(origin) is not None


def _valid_header(name: Any, value: Any) -> bool:
    """requests' own header check (names and values without line breaks or leading space)."""
    if type(name) is not str or type(value) not in (str, bytes):
        return False
    validators: Any = HEADER_VALIDATORS
    return bool(validators[str][0].match(name)) and bool(validators[type(value)][1].match(value))


def _encode(pairs: Mapping[Any, Any]) -> str | None:
    """requests' form/query encoding of a mapping of plain values (None values dropped,
    lists repeated); None when a value is not plain."""
    result = []
    for key, values in pairs.items():
        if not isinstance(key, str | bytes):
            return None
        for value in values if isinstance(values, list | tuple) else [values]:
            if value is None:
                continue
            if not isinstance(value, _PLAIN):
                return None
            result.append(
                (
                    key.encode("utf-8") if isinstance(key, str) else key,
                    value.encode("utf-8") if isinstance(value, str) else value,
                )
            )
    return urlencode(result, doseq=True)


def prepare(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: Mapping[str, Any] | None = None,
    data: Any = None,
    json: Any = None,
    auth: Any = None,
    params: Any = None,
    **unexpected: Any,
) -> requests.PreparedRequest | None:
    """The request requests would prepare on `session` (whose cookie jar is empty), or None
    when this one is not a plain shape."""
    if unexpected or not isinstance(method, str) or not _as_requests_would(url):
        return None
    method = method.upper()
    if params:
        if not isinstance(params, Mapping) or (query := _encode(params)) is None:
            return None
        if query:
            base, _, existing = url.partition("?")
            url = f"{base}?{existing}&{query}" if existing else f"{base}?{query}"
    if auth is None:
        if session.trust_env and _netrc_has("/".join(url.split("/", 3)[:3])):
            return None
    elif isinstance(auth, tuple) and len(auth) == 2:
        auth = HTTPBasicAuth(*auth)
    elif type(auth) is not HTTPBasicAuth:
        return None

    merged = CaseInsensitiveDict(session.headers)
    for name, value in (headers or {}).items():
        merged[name] = value
    prepared_headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict()
    for name, value in merged.items():
        if value is None:
            continue
        if not _valid_header(name, value):
            return None
        prepared_headers[name] = value

    body: str | bytes | None = None
    content_type = None
    if data:
        if not isinstance(data, Mapping) or (body := _encode(data)) is None:
            return None
        content_type = "application/x-www-form-urlencoded"
    elif data not in (None, {}, [], (), "", b""):
        return None
    elif json is not None:
        try:
            body = jsonlib.dumps(json, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError):
            return None
        content_type = "application/json"
    prepared = requests.PreparedRequest()
    prepared.method = method
    prepared.url = url
    prepared.headers = prepared_headers
    prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]
    prepared.body = body
    prepared.hooks = default_hooks()
    prepared.prepare_content_length(body)  # before the type, as requests orders them
    if content_type and "content-type" not in prepared_headers:
        prepared_headers["Content-Type"] = content_type
    if auth is not None:
        prepared.prepare_auth(auth, url)
    return prepared
