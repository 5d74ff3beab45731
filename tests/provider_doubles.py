"""Loopback doubles of real providers, and social-core's own backends routed to them.

A `ProviderDouble` is a small authorization server and API on 127.0.0.1 that answers the way
one provider does: the shape of its token responses, its user documents at the URLs the
stock backend calls, its refresh behaviour (no refresh token, the same one, a new one that
leaves the old valid, or a one-time one whose reuse it refuses), its error shapes, its
revocation endpoint, OpenID discovery documents and RS256-signed ID tokens. What differs
between providers is data, a `Shape`; the behaviour is this one server's.

Stock backends hard-code their provider's https URLs. `routed(cls)` returns a subclass whose
only change is its single HTTP exit, `BaseAuth.request`: https://<host>/<path> goes to
<double>/<host>/<path> instead. Its `name` is the stock one, so profiles are looked up as in
production. The double, in turn, hears the real URL back (https://<host>/<path>) and records
every call with it, so tests assert against the provider's real endpoints. Nothing here ever
leaves loopback: an unrouted URL raises.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from social_core.backends.base import BaseAuth

CLIENT_ID = "custodian-client"
CLIENT_SECRET = "custodian-client-secret"

# One signing key per test process: social-core caches JWKS documents per backend class
# and URL for a day, so every double of a run must sign with the same key.
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_ID = "double-key-1"
JWKS = "<the double's JWKS>"  # a document value: served as the signing key set


def jwks() -> dict[str, Any]:
    """The double's signing key set, as a provider publishes it."""
    key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(_KEY.public_key()))
    return {"keys": [{**key, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}


def public_key_body() -> str:
    """The public key as Keycloak's realm page shows it (base64 DER, no PEM armour)."""
    der = _KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(claims: Mapping[str, Any]) -> str:
    return jwt.encode(dict(claims), _KEY, algorithm="RS256", headers={"kid": KEY_ID})


@dataclass(frozen=True)
class Shape:
    """How one provider's authorization server and API answer (data only)."""

    token_url: str
    # How the client authenticates at the token endpoint: "basic", "post" or "either".
    client_auth: str = "post"
    expires_in: int | None = 3600
    # Strava: an absolute `expires_at` beside `expires_in`.
    expires_at: bool = False
    # "none" (no refresh token at all), "keep" (the refresh answer has none), "same" (it
    # repeats it), "rotate" (a new one; the old stays valid), "one-time" (a new one; the old
    # is refused).
    refresh: str = "rotate"
    token_type: str = "Bearer"
    # Fields of every token answer besides the tokens (Strava's athlete, Salesforce's
    # instance_url, Dropbox's account_id, Slack's user and team).
    token_extra: Mapping[str, Any] = field(default_factory=dict)
    # Twitch answers `scope` as a list.
    scope_list: bool = False
    # The answer to a spent, revoked or unknown refresh token: (status, body).
    error: tuple[int, Any] = (400, {"error": "invalid_grant"})
    # URL -> JSON document that needs a valid access token (the backend's user data calls).
    userinfo: Mapping[str, Any] = field(default_factory=dict)
    # URL -> JSON document open to all (OpenID discovery; JWKS for the key set).
    documents: Mapping[str, Any] = field(default_factory=dict)
    revoke_url: str = ""
    revoke_answer: tuple[int, Any] = (200, {})
    # The API's answer to a dead access token.
    api_error: tuple[int, Any] = (401, {"error": "invalid_token"})
    # Claims of an RS256 ID token in every token answer (aud, iat, exp, nonce are added).
    id_token: Mapping[str, Any] | None = None
    # Claims of access tokens issued as RS256 JWTs (Keycloak), else opaque random strings.
    jwt_access_token: Mapping[str, Any] | None = None


@dataclass
class Grant:
    """One user's authorization of the client, with its live and spent tokens."""

    scope: str
    nonce: str | None
    access_token: str = ""
    access_expires_at: float | None = None
    refresh_tokens: set[str] = field(default_factory=set)
    latest_refresh: str | None = None
    alive: bool = True


@dataclass(frozen=True)
class Call:
    """One request the double received, under the provider's real URL."""

    kind: str  # token, revoke, userinfo, document, api
    method: str
    url: str
    origin: str  # "main" or "other" (the second host)
    headers: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, str]
    json: Any
    status: int

    @property
    def basic(self) -> tuple[str, str] | None:
        """The (id, secret) of an HTTP Basic Authorization header, if any."""
        value = self.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password


@dataclass(frozen=True)
class Reply:
    """The double's answer to one request."""

    kind: str  # as in Call
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    # Handle the request but close the connection without answering (an answer lost in
    # transit after the provider acted on the request).
    dropped: bool = False


class ProviderDouble:
    """A provider on loopback: its authorization server and API, answering per `shape`.

    A second server (`other_url`) stands for another of the provider's hosts.
    """

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.calls: list[Call] = []
        self.grants: list[Grant] = []
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._main = self._serve("main")
        self._other = self._serve("other")
        self.base_url = f"http://127.0.0.1:{self._main.server_address[1]}"
        self.other_url = f"http://127.0.0.1:{self._other.server_address[1]}"

    def _serve(self, origin: str) -> ThreadingHTTPServer:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double._handle(self, origin)

            do_POST = do_DELETE = do_GET

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return server

    def stop(self) -> None:
        for server in (self._main, self._other):
            server.shutdown()
            server.server_close()

    # --- What tests do at the provider -----------------------------------------------------

    def local(self, url: str) -> str:
        """The double's URL for the provider's real https URL."""
        assert url.startswith("https://"), url
        return f"{self.base_url}/{url.removeprefix('https://')}"

    def authorize(self, location: str) -> dict[str, str]:
        """Play the user's consent at the authorization URL the site redirected to; return
        the callback's query (code, state)."""
        query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
        assert query.get("client_id") == CLIENT_ID, query
        code = secrets.token_urlsafe(16)
        self._codes[code] = query
        return {"code": code, "state": query.get("state", "")}

    def kill(self) -> None:
        """The user removes the app at the provider: every token of every grant dies."""
        for grant in self.grants:
            grant.alive = False

    def expire_access_tokens(self) -> None:
        """Access tokens die early (a Salesforce session timeout): the API answers 401."""
        for grant in self.grants:
            grant.access_expires_at = time.time() - 1

    def token_works(self, access_token: str) -> bool:
        return self._grant_of_access(access_token) is not None

    def of_kind(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]

    # --- The server ------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, origin: str) -> None:
        parts = urlsplit(request.path)
        url = f"https://{parts.path.lstrip('/')}"
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        raw = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        content_type = request.headers.get("Content-Type", "")
        form: dict[str, str] = {}
        body: Any = None
        if raw and "json" in content_type:
            body = json.loads(raw)
        elif raw:
            form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        headers = {key: value for key, value in request.headers.items()}
        with self._lock:
            reply = self._reply(request.command, url, query, form, body, headers)
            self.calls.append(
                Call(reply.kind, request.command, url, origin, headers, query, form, body,
                     reply.status)
            )
        if reply.dropped:
            # The request was handled, its answer never leaves: the connection just closes.
            request.close_connection = True
            return
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        request.send_response(reply.status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)

    def _reply(
        self,
        method: str,
        url: str,
        query: Mapping[str, str],
        form: Mapping[str, str],
        body: Any,
        headers: Mapping[str, str],
    ) -> Reply:
        """Answer one request (under the lock); subclasses answer in other shapes."""
        shape = self.shape
        if url == shape.token_url:
            return Reply("token", *self._token({**query, **form}, headers))
        if url in shape.documents:
            document = shape.documents[url]
            return Reply("document", 200, jwks() if document == JWKS else document)
        if url == shape.revoke_url:
            return Reply("revoke", *self._revoke(query, form, body, headers))
        kind = "userinfo" if url in shape.userinfo else "api"
        if self._grant_of_access(_token_in(headers, query)) is None:
            return Reply(kind, *shape.api_error)
        if kind == "userinfo":
            return Reply(kind, 200, shape.userinfo[url])
        return Reply(kind, 200, {"ok": True, "url": url})

    def _client_ok(self, fields: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        basic = Call("", "", "", "", headers, {}, {}, None, 0).basic
        posted = (fields.get("client_id"), fields.get("client_secret"))
        if basic is not None and basic != (CLIENT_ID, CLIENT_SECRET):
            return False
        if posted != (None, None) and posted[0] != CLIENT_ID:
            return False
        if posted[1] is not None and posted[1] != CLIENT_SECRET:
            return False
        has_basic = basic is not None
        has_post = posted == (CLIENT_ID, CLIENT_SECRET)
        wanted = self.shape.client_auth
        return {"basic": has_basic, "post": has_post, "either": has_basic or has_post}[wanted]

    def _token(
        self, fields: Mapping[str, str], headers: Mapping[str, str]
    ) -> tuple[int, Any]:
        if not self._client_ok(fields, headers):
            return 401, {"error": "invalid_client"}
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            request = self._codes.pop(fields.get("code", ""), None)
            if request is None or request.get("redirect_uri") != fields.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
            challenge = request.get("code_challenge")
            if challenge and challenge != _s256(fields.get("code_verifier", "")):
                return 400, {"error": "invalid_grant"}
            grant = Grant(scope=request.get("scope", ""), nonce=request.get("nonce"))
            self.grants.append(grant)
            return 200, self._issue(grant, first=True)
        if grant_type == "refresh_token":
            holder = self._grant_of_refresh(fields.get("refresh_token", ""))
            if holder is None:
                return self.shape.error
            return 200, self._issue(holder, first=False, used=fields["refresh_token"])
        return 400, {"error": "unsupported_grant_type"}

    def _issue(self, grant: Grant, *, first: bool, used: str = "") -> dict[str, Any]:
        shape, now = self.shape, int(time.time())
        if shape.jwt_access_token is not None:
            grant.access_token = sign(
                {
                    **shape.jwt_access_token,
                    "aud": CLIENT_ID,
                    "iat": now,
                    "exp": now + (shape.expires_in or 3600),
                    "jti": secrets.token_hex(8),
                }
            )
        else:
            grant.access_token = secrets.token_urlsafe(24)
        grant.access_expires_at = now + shape.expires_in if shape.expires_in else None
        answer: dict[str, Any] = {
            **shape.token_extra,
            "access_token": grant.access_token,
            "token_type": shape.token_type,
            "scope": grant.scope.split() if shape.scope_list else grant.scope,
        }
        if shape.expires_in:
            answer["expires_in"] = shape.expires_in
            if shape.expires_at:
                answer["expires_at"] = now + shape.expires_in
        refresh = self._refresh_token_for(grant, first=first, used=used)
        if refresh:
            answer["refresh_token"] = refresh
        if shape.id_token is not None:
            claims = {**shape.id_token, "aud": CLIENT_ID, "iat": now, "exp": now + 3600}
            if grant.nonce:
                claims["nonce"] = grant.nonce
            answer["id_token"] = sign(claims)
        return answer

    def _refresh_token_for(self, grant: Grant, *, first: bool, used: str) -> str | None:
        mode = self.shape.refresh
        if mode == "none":
            return None
        if not first and mode in ("keep", "same"):
            return used if mode == "same" else None
        token = secrets.token_urlsafe(24)
        if mode == "one-time":
            grant.refresh_tokens.discard(used)
        grant.refresh_tokens.add(token)
        grant.latest_refresh = token
        return token

    def _grant_of_refresh(self, token: str) -> Grant | None:
        for grant in self.grants:
            if grant.alive and token in grant.refresh_tokens:
                return grant
        return None

    def _grant_of_access(self, token: str | None) -> Grant | None:
        for grant in self.grants:
            if grant.alive and token and grant.access_token == token:
                expires = grant.access_expires_at
                return grant if expires is None or time.time() < expires else None
        return None

    def _revoke(
        self,
        query: Mapping[str, str],
        form: Mapping[str, str],
        body: Any,
        headers: Mapping[str, str],
    ) -> tuple[int, Any]:
        fields = {**query, **form, **(body if isinstance(body, dict) else {})}
        token = fields.get("token") or fields.get("access_token") or _token_in(headers, {})
        for grant in self.grants:
            if token and (token == grant.access_token or token in grant.refresh_tokens):
                grant.alive = False
        return self.shape.revoke_answer


def _token_in(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The access token of an API call, wherever the provider takes it: an Authorization
    header (Bearer, GitHub's `token`, Twitch's `OAuth`) or an `access_token` query field."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token", "oauth") and value:
        return value
    return query.get("access_token")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# --- Stock backends, routed to the double ------------------------------------------------------


def route(url: str) -> str:
    """The double's URL for a provider URL; refuses anything that would leave loopback."""
    double = getattr(settings, "PROVIDER_DOUBLE_URL", "")
    if double and url.startswith(f"{double}/"):
        return url
    if not double or not url.startswith("https://"):
        raise RuntimeError(f"not routed to a provider double: {url.split('?')[0]}")
    return f"{double}/{url.removeprefix('https://')}"


_ROUTED: dict[str, type[BaseAuth[Any]]] = {}


def routed(backend: type[BaseAuth[Any]]) -> str:
    """The dotted path of `backend` with its HTTP exit routed to the double, for
    AUTHENTICATION_BACKENDS."""
    attribute = f"{backend.__module__.rsplit('.', 1)[-1]}_{backend.__name__}"
    if attribute not in _ROUTED:

        def request(self: Any, url: str, **kwargs: Any) -> Any:
            return backend.request(self, route(url), **kwargs)

        _ROUTED[attribute] = type(
            backend.__name__, (backend,), {"request": request, "__module__": __name__}
        )
    return f"{__name__}.{attribute}"


def __getattr__(name: str) -> type[BaseAuth[Any]]:
    """Routed backends are attributes of this module (AUTHENTICATION_BACKENDS imports them)."""
    try:
        return _ROUTED[name]
    except KeyError:
        raise AttributeError(name) from None
