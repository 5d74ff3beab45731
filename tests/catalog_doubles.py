"""Loopback doubles of the catalog's providers (docs/providers/doubles.md).

`CatalogDouble` is a `ProviderDouble` (tests/provider_doubles.py: same routing of
https://<host>/<path>, same call records) for the shapes `Shape` lacks: an authorization
endpoint that checks what the site sent and redirects with extra callback fields (QuickBooks'
realmId, Xero's session_state), a JSON token body, tokens nested in the exchange answer but
not in the refresh answer (Slack), errors inside HTTP 200 answers, rotation with a grace
period (Xero) or only after a day (QuickBooks), idle death of refresh tokens, a refresh-token
lifetime in token answers, no `expires_in` at all (Notion), JSON revocation with Basic
client authentication, and API calls that need headers or a company id in their path.

Where a request differs from what the provider documents ("check" in doubles.md), the double
answers in the provider's error shape and records a failure: tests assert there are none. As
in the base double, everything is data (`CatalogShape`); time is `time.time()`, so tests move
it with time_machine.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from tests.provider_doubles import (
    CLIENT_ID,
    CLIENT_SECRET,
    Call,
    Grant,
    ProviderDouble,
    Reply,
    Shape,
    _s256,
    _token_in,
    sign,
)

DAY = 86400
Refusal = tuple[int, Any]


def oauth_error(status: int, code: str) -> Refusal:
    """RFC 6749 §5.2 (Xero)."""
    return status, {"error": code}


def intuit_error(status: int, code: str) -> Refusal:
    """Intuit's token endpoint (its SDK's errorResponse.json)."""
    return status, {"error_description": "Token invalid", "error": code}


def notion_error(status: int, code: str) -> Refusal:
    """Notion's error envelope; the code is in `code`, not OAuth's `error`."""
    return status, {
        "object": "error",
        "status": status,
        "code": code,
        "message": f"{code} (a double's message)",
        "request_id": str(uuid.uuid4()),
    }


def slack_error(status: int, code: str) -> Refusal:
    """Slack reports every failure inside an HTTP 200 answer."""
    return 200, {"ok": False, "error": code}


@dataclass(frozen=True)
class Route:
    """One API endpoint: what a call needs besides a live token, and its answer.

    `url` is the real URL; `{realmId}` in it stands for the grant's callback field of that
    name (QuickBooks' company), and another value is refused with 403.
    """

    method: str
    url: str
    answer: Any
    needs: Mapping[str, str] = field(default_factory=dict)  # headers, exactly
    refused: Refusal = (403, {"error": "forbidden"})  # the answer when one is missing

    def match(self, url: str) -> re.Match[str] | None:
        pattern = re.escape(self.url).replace(re.escape("{realmId}"), "(?P<realmId>[^/]+)")
        return re.fullmatch(pattern, url)


@dataclass(frozen=True)
class Revoke:
    """The provider's revocation endpoint, as it documents the request."""

    url: str
    token: str  # "access" or "refresh": the token it takes
    placement: str  # "form" or "json" (`{"token": …}`), or "bearer"
    basic: bool = False  # the client authenticates with HTTP Basic
    method: str = "POST"
    answer: Refusal = (200, None)
    # The answer for a dead or unknown token (Slack's invalid_auth); None: `answer`.
    dead: Refusal | None = None
    needs: Mapping[str, str] = field(default_factory=dict)  # headers it requires
    refused: Refusal = (400, {"error": "invalid_request"})  # when one is missing


@dataclass(frozen=True)
class CatalogShape(Shape):
    """`Shape`, plus what the catalog's providers need (doubles.md, "What `Shape` lacks").

    `refresh` takes "one-time" (Notion, Slack), "grace" (Xero: a superseded refresh token
    keeps working `grace` seconds and gets the answer issued when it was superseded) and
    "daily" (QuickBooks: the same refresh token until it is a day old, then a new one).
    """

    name: str = ""  # the provider's name on the site: its redirect URI
    authorize_url: str = ""
    # Authorization parameters and their values; None: must not be sent.
    expect: Mapping[str, str | None] = field(default_factory=dict)
    pkce: bool = False  # an S256 challenge is required (else refused)
    # Extra callback fields; "{scope}" is the scope asked for.
    callback: Mapping[str, str] = field(default_factory=dict)
    token_body: str = "form"  # "form" or "json"
    refuse: Callable[[int, str], Refusal] = oauth_error  # the provider's error shape
    bad_code: str = "invalid_grant"  # the code of a refused authorization code
    nest: str = ""  # the exchange answer's tokens sit under this key (Slack)
    nested: Mapping[str, Any] = field(default_factory=dict)  # beside them there
    refresh_extra: Mapping[str, Any] | None = None  # the refresh answer's other fields
    offline_scope: str = ""  # without this scope, no refresh token
    grace: float = 0
    idle_death: float | None = None  # refresh tokens unused this long are dead
    lifetime_key: str = ""  # the refresh token's lifetime in token answers…
    lifetime: int = 0  # …and its value (seconds, rolling)
    routes: tuple[Route, ...] = ()
    revocation: Revoke | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://testserver/complete/{self.name}/"


@dataclass
class Authorization(Grant):
    """One grant with everything the catalog's rotations need."""

    callback: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # this grant's answer fields
    access: dict[str, float | None] = field(default_factory=dict)  # live token -> expiry
    issued_at: float = 0.0  # when the latest refresh token was issued
    used_at: float = 0.0  # when it was last issued or used
    superseded: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)


class CatalogDouble(ProviderDouble):
    """A catalog provider on loopback (one per test), answering per its `CatalogShape`."""

    shape: CatalogShape
    grants: list[Authorization]  # type: ignore[assignment]

    def __init__(self, shape: CatalogShape) -> None:
        self.failures: list[str] = []
        # What tests change between logins: the callback (another company) and the
        # exchange answer's fields (another workspace).
        self.callback = dict(shape.callback)
        self.variant: dict[str, Any] = {}
        self.deny = False  # the user refuses consent
        self.drop_next_refresh = False  # rotate, then lose the answer
        super().__init__(shape)

    # --- What tests do at the provider -----------------------------------------------------

    def expire_access_tokens(self) -> None:
        """Access tokens die now (Notion's have no lifetime: the test decides)."""
        for grant in self.grants:
            grant.access = dict.fromkeys(grant.access, time.time() - 1)

    def latest(self) -> tuple[str, str | None]:
        """The newest grant's newest access token and its latest refresh token."""
        grant = self.grants[-1]
        return grant.access_token, grant.latest_refresh

    # --- The server ------------------------------------------------------------------------

    def _reply(
        self,
        method: str,
        url: str,
        query: Mapping[str, str],
        form: Mapping[str, str],
        body: Any,
        headers: Mapping[str, str],
    ) -> Reply:
        shape = self.shape
        if url == shape.authorize_url:
            return self._authorize(query)
        if url == shape.token_url:
            return self._token_endpoint(form, body, headers)
        if shape.revocation is not None and url == shape.revocation.url:
            return Reply("revoke", *self._revocation(shape.revocation, method, form, body, headers))
        grant = self._grant_of_access(_token_in(headers, query))
        if url in shape.userinfo:
            if grant is None:
                return Reply("userinfo", *shape.api_error)
            return Reply("userinfo", 200, shape.userinfo[url])
        for route in shape.routes:
            match = route.match(url)
            if match is None:
                continue
            if grant is None:
                return Reply("api", *shape.api_error)
            realm = match.groupdict().get("realmId")
            if method != route.method or (realm and realm != grant.callback.get("realmId")):
                return Reply("api", 403, {"error": "forbidden"})
            if any(headers.get(name) != value for name, value in route.needs.items()):
                return Reply("api", *route.refused)
            return Reply("api", 200, route.answer)
        return Reply("api", 404, {"error": "not_found"})

    def _fail(self, kind: str, why: str, code: str) -> Reply:
        self.failures.append(f"{kind}: {why}")
        return Reply(kind, *self.shape.refuse(400, code))

    def _authorize(self, query: Mapping[str, str]) -> Reply:
        shape = self.shape
        wanted: dict[str, str | None] = {
            "client_id": CLIENT_ID,
            "redirect_uri": shape.redirect_uri,
            **shape.expect,
        }
        wrong = [f"{key}={query.get(key)!r}" for key, value in wanted.items()
                 if query.get(key) != value]
        if not query.get("state"):
            wrong.append("no state")
        challenge = (query.get("code_challenge"), query.get("code_challenge_method"))
        if shape.pkce != (challenge[0] is not None) or (shape.pkce and challenge[1] != "S256"):
            wrong.append(f"PKCE {challenge}")
        if wrong:
            return self._fail("authorize", ", ".join(wrong), "invalid_request")
        params = {"state": query["state"]}
        if self.deny:
            params["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            self._codes[code] = dict(query)
            scope = query.get("scope", "")
            params = {
                "code": code,
                **{key: value.format(scope=scope) for key, value in self.callback.items()},
                **params,
            }
        location = f"{shape.redirect_uri}?{urlencode(params, quote_via=quote)}"
        return Reply("authorize", 302, None, {"Location": location})

    def _token_endpoint(
        self, form: Mapping[str, str], body: Any, headers: Mapping[str, str]
    ) -> Reply:
        shape = self.shape
        content_type = headers.get("Content-Type", "")
        if shape.token_body == "json":
            if not content_type.startswith("application/json") or not isinstance(body, dict):
                return self._fail("token", f"not a JSON body ({content_type})", "invalid_json")
            fields: Mapping[str, Any] = body
        else:
            if not content_type.startswith("application/x-www-form-urlencoded"):
                return self._fail("token", f"not a form ({content_type})", "invalid_request")
            fields = form
        basic = Call("", "", "", "", headers, {}, {}, None, 0).basic
        if basic != (CLIENT_ID, CLIENT_SECRET) or {"client_id", "client_secret"} & set(fields):
            return self._fail("token", "client authentication is not HTTP Basic alone",
                              "invalid_client")
        grant_type = fields.get("grant_type")
        if grant_type == "refresh_token":
            status, answer, dropped = self._refresh(str(fields.get("refresh_token", "")))
            headers_out = {"Cache-Control": "no-store"}
            return Reply("token", status, answer, headers_out, dropped=dropped)
        if grant_type in ("authorization_code", None) and fields.get("code"):
            return self._exchange(fields)
        return self._fail("token", f"grant_type {grant_type!r}", "unsupported_grant_type")

    def _exchange(self, fields: Mapping[str, Any]) -> Reply:
        shape = self.shape
        request = self._codes.pop(str(fields["code"]), None)
        if request is None:
            return Reply("token", *shape.refuse(400, shape.bad_code))
        if fields.get("redirect_uri") != shape.redirect_uri:
            return self._fail("token", f"redirect_uri {fields.get('redirect_uri')!r}",
                              shape.bad_code)
        challenge = request.get("code_challenge")
        if challenge and challenge != _s256(str(fields.get("code_verifier", ""))):
            return self._fail("token", "the PKCE verifier does not match", shape.bad_code)
        if not challenge and "code_verifier" in fields:
            return self._fail("token", "a PKCE verifier without a challenge", shape.bad_code)
        scope = request.get("scope", "")
        grant = Authorization(
            scope=scope,
            nonce=None,
            callback={key: value.format(scope=scope) for key, value in self.callback.items()},
            fields=dict(self.variant),
        )
        self.grants.append(grant)
        offline = not shape.offline_scope or shape.offline_scope in scope.split()
        refresh = self._new_refresh(grant) if offline else None
        return Reply("token", 200, self._issue_tokens(grant, refresh, first=True),
                     {"Cache-Control": "no-store"})

    def _refresh(self, token: str) -> tuple[int, Any, bool]:
        """Rotation per `shape.refresh` (doubles.md's tables); (status, answer, dropped)."""
        shape, now = self.shape, time.time()
        for grant in self.grants:
            if not grant.alive:
                continue
            if token in grant.superseded:
                when, answer = grant.superseded[token]
                if now - when < shape.grace:
                    return 200, answer, False  # the same token set again; nothing revoked
                break
            if token != grant.latest_refresh:
                continue
            if shape.idle_death is not None and now - grant.used_at >= shape.idle_death:
                break
            keep = shape.refresh == "daily" and now - grant.issued_at < DAY
            refresh = token if keep else self._new_refresh(grant)
            grant.used_at = now
            answer = self._issue_tokens(grant, refresh, first=False)
            if not keep:
                grant.superseded[token] = (now, answer)
            dropped, self.drop_next_refresh = self.drop_next_refresh, False
            return 200, answer, dropped
        return *shape.error, False

    def _new_refresh(self, grant: Authorization) -> str:
        token = secrets.token_urlsafe(24)
        grant.latest_refresh = token
        grant.issued_at = grant.used_at = time.time()
        return token

    def _issue_tokens(
        self, grant: Authorization, refresh: str | None, *, first: bool
    ) -> dict[str, Any]:
        shape, now = self.shape, time.time()
        access = secrets.token_urlsafe(24)
        grant.access_token = access
        grant.access[access] = now + shape.expires_in if shape.expires_in else None
        tokens: dict[str, Any] = {"access_token": access, "token_type": shape.token_type}
        if shape.expires_in:
            tokens["expires_in"] = shape.expires_in
        if refresh:
            tokens["refresh_token"] = refresh
        if shape.lifetime_key:
            tokens[shape.lifetime_key] = shape.lifetime
        if shape.id_token is not None and "openid" in grant.scope.split():
            tokens["id_token"] = sign(
                {**shape.id_token, "aud": CLIENT_ID, "iat": int(now), "exp": int(now) + 3600}
            )
        if not first and shape.refresh_extra is not None:
            return {**shape.refresh_extra, **grant.fields, **tokens}
        if first and shape.nest:
            return {**shape.token_extra, **grant.fields, shape.nest: {**shape.nested, **tokens}}
        return {**shape.token_extra, **grant.fields, **tokens}

    def _revocation(
        self,
        spec: Revoke,
        method: str,
        form: Mapping[str, str],
        body: Any,
        headers: Mapping[str, str],
    ) -> Refusal:
        basic = Call("", "", "", "", headers, {}, {}, None, 0).basic
        content_type = headers.get("Content-Type", "")
        token: str | None = None
        if spec.placement == "bearer":
            token = _token_in(headers, {})
        elif spec.placement == "json" and content_type.startswith("application/json"):
            token = body.get("token") if isinstance(body, dict) else None
        elif spec.placement == "form" and content_type.startswith("application/x-www-form"):
            token = form.get("token")
        wrong = []
        if method != spec.method or token is None:
            wrong.append(f"{method} with the token not as {spec.placement}")
        if (basic == (CLIENT_ID, CLIENT_SECRET)) != spec.basic:
            wrong.append(f"client authentication {basic!r}")
        if wrong:
            self.failures.append(f"revoke: {', '.join(wrong)}")
            return self.shape.refuse(400, "invalid_request")
        if any(headers.get(name) != value for name, value in spec.needs.items()):
            return spec.refused
        grant = self._grant_of(str(token), spec.token)
        if grant is None:
            return spec.dead or spec.answer
        grant.alive = False  # every token of the grant dies
        return spec.answer

    def _grant_of(self, token: str, kind: str) -> Authorization | None:
        if kind == "access":
            return self._grant_of_access(token)
        for grant in self.grants:
            if grant.alive and token in (grant.latest_refresh, *grant.superseded):
                return grant
        return None

    def _grant_of_access(self, token: str | None) -> Authorization | None:
        for grant in self.grants:
            if grant.alive and token and token in grant.access:
                expires = grant.access[token]
                return grant if expires is None or time.time() < expires else None
        return None
