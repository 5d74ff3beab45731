"""Test control plane: counters, injected token-endpoint faults and latency, and
JSON endpoints that let the test-suite steer the provider.

The state lives in this process's memory behind a lock: the provider is one
process with one thread per request, so that is enough to count concurrent
calls right. The endpoints are only routed when DEMO_PROVIDER_TEST_CONTROLS=1.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_refresh_token_model,
    set_token_value,
)
from oauth2_provider.settings import oauth2_settings

from .models import Approval

DROP_REFRESH_TOKEN = "drop_refresh_token"
# Long enough that any client under test has given up (their timeouts are shorter).
TIMEOUT_FAULT_SECONDS = 5.0


def _server_error() -> HttpResponse:
    return JsonResponse({"error": "server_error"}, status=500)


def _rate_limited() -> HttpResponse:
    return JsonResponse({"error": "rate_limited", "message": "Too many requests."}, status=429)


def _garbage() -> HttpResponse:
    return HttpResponse("<html>oops</html>", content_type="text/html", status=200)


def _no_access_token() -> HttpResponse:
    return JsonResponse({"token_type": "Bearer"}, status=200)


def _timeout() -> HttpResponse:
    time.sleep(TIMEOUT_FAULT_SECONDS)
    return JsonResponse({"error": "gateway_timeout"}, status=504)


# Faults that replace the token call; DROP_REFRESH_TOKEN instead alters a processed call.
FAULT_RESPONSES: dict[str, Callable[[], HttpResponse]] = {
    "server_error": _server_error,
    "rate_limited": _rate_limited,
    "garbage": _garbage,
    "no_access_token": _no_access_token,
    "timeout": _timeout,
}
FAULT_MODES = frozenset(FAULT_RESPONSES) | {DROP_REFRESH_TOKEN}


@dataclass
class _Fault:
    mode: str
    remaining: int | None  # None: until reset


class ControlState:
    """Counters, faults and latency shared by all request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._token_calls: Counter[str] = Counter()
            self._refresh_ok = 0
            self._refresh_rejected = 0
            self._logout_calls = 0
            self._revoke_calls = 0
            self._discovery_calls = 0
            self._jwks_calls = 0
            # How clients authenticated at the token and revocation endpoints.
            self._client_auth: Counter[str] = Counter()
            self._faults: dict[str, _Fault] = {}
            self._token_latency_ms = 0
            # (username, client_id) -> the code /accounts answers 403 with while unapproved.
            self._approval_codes: dict[tuple[str, str], str] = {}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "token_calls": {
                    "authorization_code": 0,
                    "refresh_token": 0,
                    **self._token_calls,
                },
                "refresh_ok": self._refresh_ok,
                "refresh_rejected": self._refresh_rejected,
                "logout_calls": self._logout_calls,
                "revoke_calls": self._revoke_calls,
                "discovery_calls": self._discovery_calls,
                "jwks_calls": self._jwks_calls,
                "client_auth": {"basic": 0, "body": 0, **self._client_auth},
            }

    def count_token_call(self, grant_type: str) -> None:
        with self._lock:
            self._token_calls[grant_type] += 1

    def count_refresh_result(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._refresh_ok += 1
            else:
                self._refresh_rejected += 1

    def count_client_auth(self, method: str) -> None:
        with self._lock:
            self._client_auth[method] += 1

    def count_logout(self) -> None:
        with self._lock:
            self._logout_calls += 1

    def count_revoke(self) -> None:
        with self._lock:
            self._revoke_calls += 1

    def count_discovery(self) -> None:
        with self._lock:
            self._discovery_calls += 1

    def count_jwks(self) -> None:
        with self._lock:
            self._jwks_calls += 1

    def set_fault(self, grant_type: str, mode: str, count: int | None) -> None:
        with self._lock:
            self._faults[grant_type] = _Fault(mode, count)

    def take_fault(self, grant_type: str) -> str | None:
        """Consume one occurrence of the fault armed for this grant type, if any."""
        with self._lock:
            fault = self._faults.get(grant_type)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[grant_type]
            return fault.mode

    def set_approval_code(self, username: str, client_id: str, code: str) -> None:
        with self._lock:
            self._approval_codes[(username, client_id)] = code

    def approval_code(self, username: str, client_id: str) -> str:
        """The 403 code for a client not approved by this user: Monzo's usual one, unless a
        test asked for another (`forbidden.verification_required`)."""
        with self._lock:
            return self._approval_codes.get(
                (username, client_id), "forbidden.insufficient_permissions"
            )

    def set_token_latency(self, ms: int) -> None:
        with self._lock:
            self._token_latency_ms = ms

    def token_latency_seconds(self) -> float:
        with self._lock:
            return self._token_latency_ms / 1000


STATE = ControlState()


class _BadRequest(Exception):
    """Raised by a control endpoint to answer 400 with its message."""


def _control(
    view: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[HttpRequest], HttpResponse]:
    """JSON in/out, CSRF-exempt, and refused unless the caller is on loopback."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.META.get("REMOTE_ADDR") not in ("127.0.0.1", "::1"):
            return JsonResponse({"error": "forbidden"}, status=403)
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise _BadRequest("body must be a JSON object")
            return JsonResponse(view(body))
        except (ValueError, _BadRequest) as error:
            return JsonResponse({"error": "bad_request", "message": str(error)}, status=400)
        except LookupError as error:
            return JsonResponse({"error": "not_found", "message": str(error)}, status=404)

    return wrapper


def _user(body: dict[str, Any]) -> Any:
    username = body.get("username")
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise LookupError(f"no user {username!r}") from None


def _application(client_id: Any) -> Any:
    try:
        return get_application_model().objects.get(client_id=client_id)
    except get_application_model().DoesNotExist:
        raise LookupError(f"no client {client_id!r}") from None


@_control
def stats(body: dict[str, Any]) -> dict[str, Any]:
    return STATE.stats()


@_control
def reset(body: dict[str, Any]) -> dict[str, Any]:
    """Zero counters, clear faults and latency, and forget in-app approvals (test isolation)."""
    STATE.reset()
    Approval.objects.all().delete()
    return {}


@_control
def fault(body: dict[str, Any]) -> dict[str, Any]:
    mode = body.get("mode")
    count = body.get("count", 1)
    grant_type = body.get("grant_type", "refresh_token")
    if mode not in FAULT_MODES:
        raise _BadRequest(f"mode must be one of {sorted(FAULT_MODES)}")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise _BadRequest("count must be a positive integer or null")
    if not isinstance(grant_type, str) or not grant_type:
        raise _BadRequest("grant_type must be a non-empty string")
    STATE.set_fault(grant_type, mode, count)
    return {}


@_control
def latency(body: dict[str, Any]) -> dict[str, Any]:
    token_ms = body.get("token_ms")
    if not isinstance(token_ms, int) or isinstance(token_ms, bool) or token_ms < 0:
        raise _BadRequest("token_ms must be a non-negative integer")
    STATE.set_token_latency(token_ms)
    return {}


@_control
def redirect_uri(body: dict[str, Any]) -> dict[str, Any]:
    uri = body.get("uri")
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
        raise _BadRequest("uri must be an http(s) URL")
    with transaction.atomic():
        application = _application(body.get("client_id"))
        uris = application.redirect_uris.split()
        if uri not in uris:
            application.redirect_uris = " ".join([*uris, uri])
            application.save(update_fields=["redirect_uris", "updated"])
    return {}


@_control
def expire_access(body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    expired = timezone.now() - timedelta(seconds=1)
    get_access_token_model().objects.filter(user=user).update(expires=expired)
    return {}


@_control
def revoke_grant(body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    with transaction.atomic():
        for refresh_token in get_refresh_token_model().objects.filter(
            user=user, revoked__isnull=True
        ):
            refresh_token.revoke()
        get_access_token_model().objects.filter(user=user).delete()
    return {}


@_control
def approve(body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    application = _application(body.get("client_id", settings.MONZO_CLIENT_ID))
    Approval.objects.get_or_create(user=user, application=application)
    return {}


APPROVAL_CODES = ("forbidden.insufficient_permissions", "forbidden.verification_required")


@_control
def withdraw_approval(body: dict[str, Any]) -> dict[str, Any]:
    """Forget a user's in-app approval of a client, as when Monzo asks for it again: its data
    endpoints answer 403 with `code` until the next approval."""
    user = _user(body)
    application = _application(body.get("client_id", settings.MONZO_CLIENT_ID))
    code = body.get("code", APPROVAL_CODES[0])
    if code not in APPROVAL_CODES:
        raise _BadRequest(f"code must be one of {list(APPROVAL_CODES)}")
    Approval.objects.filter(user=user, application=application).delete()
    STATE.set_approval_code(user.username, application.client_id, code)
    return {}


# Bulk grants: benchmarks and tests need thousands of connected users, and one browser
# login per user would take minutes.
BULK_GRANT_MAX = 20_000
BULK_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


@_control
def bulk_grant(body: dict[str, Any]) -> dict[str, Any]:
    """Mint `count` users (``{prefix}{i}``) and one live grant each for a client; return
    their tokens as the token endpoint would have issued them after a consent."""
    count = body.get("count")
    prefix = body.get("prefix", "bulk")
    client_id = body.get("client_id", settings.DEMO_CLIENT_ID)
    scope = body.get("scope", "read write")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= BULK_GRANT_MAX:
        raise _BadRequest(f"count must be an integer from 1 to {BULK_GRANT_MAX}")
    if not isinstance(prefix, str) or not prefix or not set(prefix) <= BULK_PREFIX_CHARS:
        raise _BadRequest("prefix must be lowercase letters, digits, '_' or '-'")
    if not isinstance(scope, str):
        raise _BadRequest("scope must be a string")
    lifetime = oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS
    usernames = [f"{prefix}{index}" for index in range(count)]
    user_model = get_user_model()
    with transaction.atomic():
        application = _application(client_id)
        existing = set(
            user_model.objects.filter(username__in=usernames).values_list("username", flat=True)
        )
        new_users = []
        for username in usernames:
            if username not in existing:
                user = user_model(username=username)
                user.set_unusable_password()
                new_users.append(user)
        user_model.objects.bulk_create(new_users, batch_size=500)
        users = user_model.objects.in_bulk(usernames, field_name="username")
        expires = timezone.now() + timedelta(seconds=lifetime)
        access_tokens, raw = [], []
        for username in usernames:
            access, refresh = secrets.token_urlsafe(30), secrets.token_urlsafe(30)
            token = get_access_token_model()(
                user=users[username], application=application, expires=expires, scope=scope
            )
            set_token_value(token, access)
            access_tokens.append(token)
            raw.append((username, access, refresh))
        get_access_token_model().objects.bulk_create(access_tokens, batch_size=500)
        refresh_tokens = []
        for token, (_, _, refresh) in zip(access_tokens, raw, strict=False):
            row = get_refresh_token_model()(
                user=token.user, application=application, access_token=token,
                token_family=uuid.uuid4(),
            )
            set_token_value(row, refresh)
            refresh_tokens.append(row)
        get_refresh_token_model().objects.bulk_create(refresh_tokens, batch_size=500)
    return {
        "grants": [
            {
                "username": username,
                "user_id": f"user_{username}",
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "scope": scope,
            }
            for username, access, refresh in raw
        ]
    }


urlpatterns = [
    path("_control/stats", require_GET(stats)),
    path("_control/reset", require_POST(reset)),
    path("_control/fault", require_POST(fault)),
    path("_control/latency", require_POST(latency)),
    path("_control/redirect_uri", require_POST(redirect_uri)),
    path("_control/expire_access", require_POST(expire_access)),
    path("_control/revoke_grant", require_POST(revoke_grant)),
    path("_control/approve", require_POST(approve)),
    path("_control/withdraw_approval", require_POST(withdraw_approval)),
    path("_control/bulk_grant", require_POST(bulk_grant)),
]
