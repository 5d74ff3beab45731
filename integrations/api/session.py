"""get_session: a requests.Session bound to one connected account, always carrying a fresh token."""

from __future__ import annotations

import time
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from social_django.models import UserSocialAuth

from integrations.api.origins import OriginGuard, UnsafeURL
from integrations.exceptions import (
    AwaitingApproval,
    CredentialsUnreadable,
    ForeignHostRefused,
    MultipleAccounts,
    NotConnected,
    ReauthRequired,
)
from integrations.providers.registry import backend_instance
from integrations.providers.registry import profile as provider_profile
from integrations.refreshing.approval import note_awaiting
from integrations.refreshing.single_flight import refresh_after_rejection, refresh_if_due
from integrations.store import crypto
from integrations.store.credentials import Credentials, Status, read_credentials

# One connection pool for every session in the process, so short-lived sessions (one per
# get_session call) reuse TCP/TLS connections instead of opening new ones.
_SHARED_ADAPTER = HTTPAdapter(pool_connections=16, pool_maxsize=64)


class ProviderSession(requests.Session):
    """A requests.Session bound to one association.

    Relative URLs resolve against the provider's API base; each request carries the current
    access token, refreshed first when it expires within the leeway; a 401 triggers one
    refresh and one retry. The token goes only to the API base's origin and the provider's
    declared `api_hosts`: other URLs raise ForeignHostRefused before anything is sent, a
    redirect elsewhere loses the Authorization header, and a 401 from elsewhere never
    triggers a refresh.

    A 403 whose error code the provider's profile lists in `approval_codes` (Monzo's
    `forbidden.insufficient_permissions`) puts the association back to awaiting approval in
    the provider's app; the 403 still goes to the caller, and the next get_session raises
    AwaitingApproval.
    """

    def __init__(
        self,
        association: UserSocialAuth,
        *,
        base_url: str,
        timeout: float,
        leeway: float,
        api_hosts: tuple[str, ...] = (),
        approval_codes: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.association = association
        self.guard = OriginGuard(base_url, api_hosts)
        self.base_url = self.guard.base_url
        self.timeout = timeout
        self.leeway = leeway
        self.approval_codes = approval_codes
        self._credentials: Credentials = read_credentials(association.extra_data or {})
        self.mount("https://", _SHARED_ADAPTER)
        self.mount("http://", _SHARED_ADAPTER)

    def __repr__(self) -> str:
        return (
            f"<ProviderSession {self.association.provider}:{self.association.uid} "
            f"base_url={self.base_url!r}>"
        )

    def close(self) -> None:
        # The adapter is shared by every session: closing it would drop everyone's pool.
        self.adapters.clear()

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.update(_named(args, kwargs))
        full_url = self._resolve(url if isinstance(url, str) else url.decode())
        kwargs.setdefault("timeout", self.timeout)
        credentials = self._fresh_credentials()
        sent_at = time.time()
        response = self._send(credentials, method, full_url, **kwargs)
        if (
            response.status_code == 401
            and _replayable(kwargs)
            # A 401 to a request that did not carry our token (it was redirected elsewhere,
            # or back from elsewhere) says nothing about the token: refreshing would let any
            # redirect force token calls.
            and _carried(response, credentials)
        ):
            response.close()
            credentials = self._credentials = refresh_after_rejection(
                self.association, rejected_access_token=credentials.access_token
            )
            # A second 401 goes back to the caller: never loop.
            sent_at = time.time()
            response = self._send(credentials, method, full_url, **kwargs)
        self._notice_approval_needed(response, credentials, sent_at)
        return response

    def _notice_approval_needed(
        self, response: requests.Response, credentials: Credentials, sent_at: float
    ) -> None:
        """On a 403 that says access awaits approval in the provider's app, record it (only
        for our token's own request: an answer from elsewhere says nothing about it)."""
        if response.status_code != 403 or not self.approval_codes:
            return
        code = _error_code(response)
        if code is None or not code.startswith(self.approval_codes):
            return
        if _carried(response, credentials):
            note_awaiting(self.association, credentials.access_token, asked_at=sent_at, code=code)

    def _fresh_credentials(self) -> Credentials:
        if self._credentials.expires_within(self.leeway, now=time.time()):
            self._credentials = refresh_if_due(self.association, leeway=self.leeway)
        return self._credentials

    def _send(self, credentials: Credentials, method: str | bytes, url: str, **kwargs: Any):
        # As an auth object, not a header: requests would otherwise let a .netrc entry for
        # the host replace it.
        kwargs["auth"] = _Bearer(credentials.access_token)
        return super().request(method, url, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Every request leaves through here, also one re-sent by the caller (`send(prepared)`
        with a changed URL): the token goes nowhere the provider does not own."""
        if request.url is None or not self.guard.allows(request.url):
            request.headers.pop("Authorization", None)
        return super().send(request, **kwargs)

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """On a redirect, keep the token only when the next hop is one of the provider's hosts.

        requests already drops it on a change of host; this also drops it on a change to a
        host that requests would consider the same (another scheme or port on it).
        """
        super().rebuild_auth(prepared_request, response)
        if not self.guard.allows(prepared_request.url):
            prepared_request.headers.pop("Authorization", None)

    def _resolve(self, url: str) -> str:
        try:
            return self.guard.resolve(url)
        except UnsafeURL as error:
            raise ForeignHostRefused(self.association.provider, str(error)) from None


class _Bearer(AuthBase):
    """`Authorization: Bearer <token>`; its repr shows no token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<Bearer>"


# requests.Session.request's parameters after method and url, in order.
_POSITIONAL = (
    "params", "data", "headers", "cookies", "files", "auth", "timeout", "allow_redirects",
    "proxies", "hooks", "stream", "verify", "cert", "json",
)


def _named(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Name the positional arguments the way requests.Session.request would read them."""
    if len(args) > len(_POSITIONAL):
        raise TypeError(f"request() takes at most {len(_POSITIONAL) + 2} positional arguments")
    named = dict(zip(_POSITIONAL, args, strict=False))
    twice = sorted(set(named) & set(kwargs))
    if twice:
        raise TypeError(f"request() got multiple values for {', '.join(twice)}")
    return named


def _carried(response: requests.Response, credentials: Credentials) -> bool:
    """Return whether the request that got `response` carried this token."""
    sent = response.request.headers.get("Authorization") if response.request else None
    return sent == f"Bearer {credentials.access_token}"


def _error_code(response: requests.Response) -> str | None:
    """The error code of an API answer: its JSON body's `code` (Monzo), else `error`."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code") or body.get("error")
    return code if isinstance(code, str) else None


def _replayable(kwargs: dict[str, Any]) -> bool:
    """A body that is a stream or file was consumed by the first attempt; it cannot retry."""
    body = kwargs.get("data")
    return not (hasattr(body, "read") or hasattr(body, "__next__") or kwargs.get("files"))


def get_association(user: Any, provider: str, uid: str | None = None) -> UserSocialAuth:
    """Return the user's association with `provider` (one query); only ever the user's own."""
    if not getattr(user, "pk", None):
        raise NotConnected(provider)
    associations = UserSocialAuth.objects.filter(user_id=user.pk, provider=provider)
    if uid is not None:
        associations = associations.filter(uid=str(uid))
    found = list(associations.order_by("pk")[:50])
    if not found:
        raise NotConnected(provider)
    if len(found) > 1:
        raise MultipleAccounts(provider, [association.uid for association in found])
    association = found[0]
    status = (association.extra_data or {}).get("status")
    if status == Status.REAUTH_REQUIRED:
        raise ReauthRequired(
            provider, association.uid, association.extra_data.get("status_reason", "")
        )
    if status == Status.AWAITING_APPROVAL:
        raise AwaitingApproval(provider, association.uid)
    try:
        read_credentials(association.extra_data or {})
    except crypto.DecryptionError:
        raise CredentialsUnreadable(provider, association.uid) from None
    return association


def get_session(user: Any, provider: str, uid: str | None = None) -> ProviderSession:
    """Return a requests.Session that talks to `provider`'s API as `user`.

    Raises NotConnected (no such account), MultipleAccounts (several, and no uid),
    ReauthRequired (the user must reconnect; CredentialsUnreadable when the stored tokens
    cannot be decrypted), AwaitingApproval (the user must approve access in the provider's
    app first) or ProviderNotOffered (the provider was removed from the settings). Requests
    raise ReauthRequired or RefreshFailed when a refresh fails, and ForeignHostRefused for a
    URL outside the provider's hosts.
    """
    association = get_association(user, provider, uid)
    backend = backend_instance(provider)
    profile = provider_profile(provider)
    session = ProviderSession(
        association,
        base_url=profile.base_url(backend, association.extra_data or {}),
        timeout=settings.CUSTODIAN_HTTP_TIMEOUT,
        leeway=settings.CUSTODIAN_REFRESH_LEEWAY,
        api_hosts=profile.hosts(backend),
        approval_codes=profile.approval_codes,
    )
    # Headers the provider's API requires on every call (Twitch's Client-Id).
    session.headers.update(profile.request_headers(backend))
    return session


def get_token(user: Any, provider: str, uid: str | None = None) -> dict[str, Any]:
    """Return a fresh token dict for code that uses another HTTP client.

    Keys: access_token, token_type, expires_at (epoch seconds or None), scope.
    """
    credentials = refresh_if_due(get_association(user, provider, uid))
    return {
        "access_token": credentials.access_token,
        "token_type": "Bearer",
        "expires_at": credentials.expires_at,
        "scope": credentials.scope,
    }
