"""Django OAuth Toolkit's endpoints, wrapped to answer the way Monzo does, plus the
Monzo-shaped API (whoami, accounts, logout) and the in-app approval page."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.models import (
    AbstractAccessToken,
    get_access_token_model,
    get_application_model,
    revoke_access_token,
)
from oauth2_provider.views.mixins import OAuthLibMixin

from .controls import DROP_REFRESH_TOKEN, FAULT_RESPONSES, STATE
from .models import Approval
from .validator import KEEP_REFRESH_TOKEN, user_id


def _client_id(request: HttpRequest) -> str | None:
    """The client a token request claims to be, from HTTP Basic or the POST body."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme == "Basic":
        try:
            decoded = base64.b64decode(credentials).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return unquote_plus(decoded.partition(":")[0])
    return request.POST.get("client_id")


class AuthorizationView(dot_views.AuthorizationView):
    """DOT's authorization endpoint with the demo's consent page."""

    template_name = "demo_provider/authorize.html"


class TokenView(dot_views.TokenView):
    """DOT's token endpoint, counted, fault-injectable, and shaped like Monzo's.

    Monzo's token response carries ``user_id``; a Monzo client whose refresh token
    is no good gets 401 ``unauthorized.bad_refresh_token`` rather than RFC 6749's
    400 ``invalid_grant``.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        grant_type = request.POST.get("grant_type", "")
        STATE.count_token_call(grant_type)
        STATE.count_client_auth(client_auth_method(request))
        delay = STATE.token_latency_seconds()
        if delay:
            time.sleep(delay)
        fault = STATE.take_fault(grant_type)
        if fault in FAULT_RESPONSES:
            return FAULT_RESPONSES[fault]()
        if fault == DROP_REFRESH_TOKEN:
            request.META[KEEP_REFRESH_TOKEN] = "1"

        response = super().post(request, *args, **kwargs)

        if grant_type == "refresh_token":
            STATE.count_refresh_result(response.status_code == 200)
        if response.status_code == 200:
            return self._with_user_id(response, drop_refresh_token=fault == DROP_REFRESH_TOKEN)
        if (
            grant_type == "refresh_token"
            and _client_id(request) == settings.MONZO_CLIENT_ID
            and _json(response).get("error") == "invalid_grant"
        ):
            return JsonResponse(
                {
                    "code": "unauthorized.bad_refresh_token",
                    "message": "Could not refresh the access token: the refresh token is "
                    "invalid, expired or revoked.",
                },
                status=401,
            )
        return response

    @staticmethod
    def _with_user_id(response: HttpResponse, *, drop_refresh_token: bool) -> HttpResponse:
        body = _json(response)
        checksum = hashlib.sha256(body["access_token"].encode()).hexdigest()
        token = get_access_token_model().objects.select_related("user").get(token_checksum=checksum)
        body["user_id"] = user_id(token.user)
        if drop_refresh_token:
            body.pop("refresh_token", None)
        response.content = json.dumps(body)
        return response


class RevokeTokenView(dot_views.RevokeTokenView):
    """DOT's RFC 7009 revocation endpoint, counted."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        STATE.count_revoke()
        STATE.count_client_auth(client_auth_method(request))
        return super().post(request, *args, **kwargs)


def client_auth_method(request: HttpRequest) -> str:
    """How the client authenticated: "basic" (RFC 6749 §2.3.1's Authorization header) or
    "body" (client_secret in the form)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    return "basic" if header.lower().startswith("basic ") else "body"


def _json(response: HttpResponse) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def bad_access_token(
    message: str = "The access token is missing, invalid or expired.",
) -> JsonResponse:
    """Monzo's 401, with RFC 6750's error code alongside so either kind of client copes."""
    return JsonResponse(
        {"code": "unauthorized.bad_access_token", "error": "invalid_token", "message": message},
        status=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@method_decorator(csrf_exempt, name="dispatch")
class BearerView(OAuthLibMixin, View):
    """An API endpoint that needs a valid (unexpired, unrevoked) bearer access token."""

    access_token: AbstractAccessToken

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        valid, oauth_request = self.verify_request(request)
        if not valid:
            return bad_access_token()
        self.access_token = oauth_request.access_token
        return super().dispatch(request, *args, **kwargs)


class WhoAmIView(BearerView):
    """GET /ping/whoami, as Monzo answers it, plus the person's username (as most providers'
    user-info gives a handle: a site can name a new account after it)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(
            {
                "authenticated": True,
                "client_id": self.access_token.application.client_id,
                "user_id": user_id(self.access_token.user),
                "username": self.access_token.user.username,
            }
        )


class AccountsView(BearerView):
    """GET /accounts; a client needing in-app approval gets 403 until the user gives it."""

    def get(self, request: HttpRequest) -> HttpResponse:
        user = self.access_token.user
        application = self.access_token.application
        if (
            application.client_id in settings.SCA_CLIENT_IDS
            and not Approval.objects.filter(user=user, application=application).exists()
        ):
            return JsonResponse(
                {
                    "code": STATE.approval_code(user.username, application.client_id),
                    "message": "Access forbidden due to insufficient permissions: approve "
                    "this client in the app first.",
                },
                status=403,
            )
        return JsonResponse(
            {
                "accounts": [
                    {
                        "id": f"acc_{user.username}",
                        "description": f"{user.username.capitalize()}'s current account",
                        "created": user.date_joined.isoformat(),
                    }
                ]
            }
        )


@method_decorator(csrf_exempt, name="dispatch")  # dispatch is overridden: exempt it again
class LogoutView(BearerView):
    """POST /oauth2/logout: Monzo's way to end a session, revoking both tokens."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        STATE.count_logout()
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest) -> HttpResponse:
        revoke_access_token(self.access_token)
        return JsonResponse({})


class ApproveView(LoginRequiredMixin, View):
    """Stands in for the Monzo app: the user approves clients that hold their tokens."""

    def get(self, request: HttpRequest) -> HttpResponse:
        live = Q(accesstoken__user=request.user) | Q(
            refreshtoken__user=request.user, refreshtoken__revoked__isnull=True
        )
        holding = (
            get_application_model()
            .objects.filter(live, client_id__in=settings.SCA_CLIENT_IDS)
            .distinct()
        )
        approved = set(
            Approval.objects.filter(user=request.user).values_list("application_id", flat=True)
        )
        return render(
            request,
            "demo_provider/approve.html",
            {
                "pending": [app for app in holding if app.pk not in approved],
                "approved": get_application_model().objects.filter(pk__in=approved),
                "just_approved": request.GET.get("approved"),
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        application = get_object_or_404(
            get_application_model(),
            client_id=request.POST.get("client_id"),
            client_id__in=settings.SCA_CLIENT_IDS,
        )
        Approval.objects.get_or_create(user=request.user, application=application)
        return HttpResponseRedirect(f"/approve/?approved={application.client_id}")
