"""The site's pages: home, login, connected accounts and what can be done with them."""

from __future__ import annotations

import json
from typing import cast

import requests
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from social_django.models import UserSocialAuth

from integrations.api.session import get_session
from integrations.exceptions import (
    CredentialsUnreadable,
    CustodianError,
    ProviderNotOffered,
    ReauthRequired,
    RefreshFailed,
)
from integrations.models import User
from integrations.providers.registry import is_offered, provider_title
from integrations.providers.registry import profile as provider_profile
from integrations.psa import notices
from integrations.psa.disconnect import disconnect
from integrations.psa.messages import for_person
from integrations.refreshing.approval import check_again
from integrations.web.selectors import connect_options, connections_of

# What "Try it" calls for each provider: a harmless identity endpoint.
TRY_IT_PATH = "/ping/whoami"
NOT_OFFERED = (
    "This site no longer offers {provider}, so this connection cannot be used. "
    "You can disconnect it."
)
LOGGED_OUT = "You have logged out."
UNREADABLE = (
    "The stored {provider} credentials can no longer be read (the site's keys changed). "
    "Please reconnect to replace them."
)


def home(request: HttpRequest) -> HttpResponse:
    """Say what the site does and where to go next."""
    return render(request, "integrations/home.html")


class LoginView(auth_views.LoginView):
    """Log in with a provider (POST forms to /login/<backend>/) or a local password."""

    template_name = "integrations/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Log out (POST only), then say so on the page it lands on: without a word, a person
    cannot tell a completed logout from a click that did nothing."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            # Added after the session is flushed, so it survives into the next page.
            messages.success(request, LOGGED_OUT)
        return response


@login_required
def connections(request: HttpRequest, *, try_result: dict | None = None) -> HttpResponse:
    """List the user's connected accounts with what can be done with each."""
    return render(
        request,
        "integrations/connections.html",
        {
            "connections": connections_of(request.user),
            "connect_options": connect_options(request.user),
            "try_result": try_result,
        },
    )


def _own_association(request: HttpRequest, association_id: int) -> UserSocialAuth:
    """Return the association if it belongs to the logged-in user; 404 otherwise."""
    return get_object_or_404(UserSocialAuth, pk=association_id, user=request.user)


def _unusable(error: ProviderNotOffered | CredentialsUnreadable, title: str) -> str:
    """What the owner reads when the connection cannot be used at all: the provider is gone,
    or the stored credentials cannot be decrypted."""
    template = NOT_OFFERED if isinstance(error, ProviderNotOffered) else UNREADABLE
    return template.format(provider=title)


@login_required
@require_POST
def check_approval(request: HttpRequest, association_id: int) -> HttpResponse:
    """"I've approved — check again": ask the provider whether access is approved now."""
    association = _own_association(request, association_id)
    title = provider_title(association.provider)
    try:
        approved = check_again(association)
    except (ProviderNotOffered, CredentialsUnreadable) as error:
        messages.error(request, _unusable(error, title))
        return redirect("connections")
    except ReauthRequired:
        messages.error(request, f"The {title} connection has ended; please reconnect it.")
        return redirect("connections")
    except RefreshFailed:
        approved = None
    if approved:
        messages.success(request, f"Thanks — {title} access is approved and working.")
    elif approved is False:
        messages.warning(
            request,
            f"{title} still says access is not approved. Open the {title} app, approve access "
            "for this site, then check again.",
        )
    else:
        messages.warning(request, f"{title} could not be asked right now; try again in a moment.")
    return redirect("connections")


@login_required
@require_POST
def try_it(request: HttpRequest, association_id: int) -> HttpResponse:
    """Call the provider's API through get_session and show the answer: proof it works."""
    association = _own_association(request, association_id)
    title = provider_title(association.provider)
    try:
        response = get_session(request.user, association.provider, uid=association.uid).get(
            TRY_IT_PATH
        )
    except (ProviderNotOffered, CredentialsUnreadable) as error:
        messages.error(request, _unusable(error, title))
        return redirect("connections")
    except ReauthRequired:
        messages.error(request, f"{title} no longer accepts this connection: please reconnect.")
        return redirect("connections")
    except (RefreshFailed, requests.RequestException):
        # The token call or the API call itself: the provider is down, slow or unreachable.
        messages.error(request, f"{title} is not answering right now; please try again later.")
        return redirect("connections")
    except CustodianError as error:
        messages.warning(request, str(error))
        return redirect("connections")
    try:
        body = json.dumps(response.json(), indent=2, sort_keys=True)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        body = response.text[:2000]
    result = {
        "association_id": association.pk,
        "title": title,
        "path": TRY_IT_PATH,
        "status": response.status_code,
        "body": body,
    }
    return connections(request, try_result=result)


@login_required
def set_password(request: HttpRequest) -> HttpResponse:
    """Set (or change) a password, so a provider is no longer the only way to log in."""
    user = cast(User, request.user)  # login_required
    form: SetPasswordForm[User] = (
        PasswordChangeForm(user, request.POST or None)
        if user.has_usable_password()
        else SetPasswordForm(user, request.POST or None)
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        update_session_auth_hash(request, user)
        messages.success(request, "Your password is set. You can now log in with it too.")
        return redirect("connections")
    return render(request, "integrations/password.html", {"form": form})


def _is_only_login(user, association: UserSocialAuth) -> bool:
    return not user.has_usable_password() and not (
        UserSocialAuth.objects.filter(user=user).exclude(pk=association.pk).exists()
    )


@login_required
@require_http_methods(["GET", "POST"])
def confirm_disconnect(request: HttpRequest, association_id: int) -> HttpResponse:
    """Ask before disconnecting; the form posts to social-auth's disconnect endpoint.

    A provider removed from the settings has no backend, so social-auth cannot disconnect
    it: the form then posts here, and the association is removed without revocation.
    """
    association = _own_association(request, association_id)
    offered = is_offered(association.provider)
    only_login = _is_only_login(request.user, association)
    title = provider_title(association.provider)
    if request.method == "POST":
        if offered:
            return HttpResponseNotAllowed(["GET"])
        if only_login:
            messages.error(request, for_person("disconnect_disallowed", title))
            return redirect("connections")
        name = association.extra_data.get("display_name") or association.uid
        disconnect(
            association,
            actor=request.user,
            revoke=False,
            detail="provider no longer offered; not revoked",
        )
        # A stock provider's profile outlives its backend: its page of apps is still known.
        apps_url = provider_profile(association.provider).connected_apps_url
        messages.warning(request, notices.no_longer_offered(title, name, apps_url))
        return redirect("connections")
    return render(
        request,
        "integrations/confirm_disconnect.html",
        {
            "association": association,
            "title": title,
            "display_name": association.extra_data.get("display_name") or association.uid,
            "only_login": only_login,
            "offered": offered,
            "apps_url": notices.page_url(provider_profile(association.provider).connected_apps_url),
        },
    )
