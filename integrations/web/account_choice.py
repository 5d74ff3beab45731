"""The page where someone logging in with a provider account unknown here chooses: a new
account, or their existing one (integrations/psa/account_choice.py paused the login for it).

Linking to an existing account takes that account's password, checked by Django's own
AuthenticationForm (``authenticate``: the same answer and about the same time whether the
username exists or not), or a login with a provider already linked to it, after which the
page asks to confirm. Wrong passwords are counted per pending choice, not per username, so
the limit (CUSTODIAN_ACCOUNT_CHOICE_ATTEMPTS) ends the choice without telling anything about
the accounts tried.
"""

from __future__ import annotations

from http import HTTPStatus

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from integrations.providers.registry import available_providers, provider_title
from integrations.psa import account_choice
from integrations.psa.account_choice import CREATE, LINK, PendingChoice

TEMPLATE = "integrations/account_choice.html"
GONE = "integrations/account_choice_gone.html"


@never_cache
@require_http_methods(["GET", "POST"])
def choose(request: HttpRequest) -> HttpResponse:
    """Offer the choice (GET) and act on it (POST)."""
    pending = account_choice.current(request.session)
    if pending is None:
        if request.user.is_authenticated and request.method == "GET":
            return redirect("connections")
        return _gone(request, "There is no login waiting for a choice in this browser.")
    if pending.expired():
        account_choice.discard(request.session, pending)
        return _gone(
            request,
            f"You took too long to choose, so this login has expired. Nothing was created or "
            f"linked. Please log in with {provider_title(pending.backend)} again.",
        )
    if request.method == "GET":
        return _page(request, pending)
    action = request.POST.get("action")
    if action == "cancel":
        account_choice.discard(request.session, pending)
        messages.info(request, "Nothing was created or linked.")
        return redirect("connections" if request.user.is_authenticated else "login")
    if request.user.is_authenticated:
        if action == LINK:
            return redirect(
                account_choice.decide(request.session, pending, LINK, request.user.pk)
            )
    elif action == CREATE:
        return redirect(account_choice.decide(request.session, pending, CREATE))
    elif action == LINK:
        return _link_with_password(request, pending)
    return _page(request, pending, status=HTTPStatus.BAD_REQUEST)


def _link_with_password(request: HttpRequest, pending: PendingChoice) -> HttpResponse:
    form = AuthenticationForm(request, data=request.POST)
    if form.is_valid():
        user = form.get_user()
        return redirect(account_choice.decide(request.session, pending, LINK, user.pk))
    pending.failures += 1
    if pending.failures >= settings.CUSTODIAN_ACCOUNT_CHOICE_ATTEMPTS:
        account_choice.discard(request.session, pending)
        return _gone(
            request,
            "Too many wrong usernames or passwords, so this login has ended. Nothing was "
            f"created or linked. Please log in with {provider_title(pending.backend)} again.",
            status=HTTPStatus.TOO_MANY_REQUESTS,
        )
    account_choice.save(request.session, pending)
    return _page(request, pending, form=form)


def _page(
    request: HttpRequest,
    pending: PendingChoice,
    *,
    form: AuthenticationForm | None = None,
    status: int = HTTPStatus.OK,
) -> HttpResponse:
    others = [
        info for info in available_providers() if info.configured and info.name != pending.backend
    ]
    form = form or AuthenticationForm(request)
    # Creating an account is the main way on; the login form must not take the focus.
    form.fields["username"].widget.attrs.pop("autofocus", None)
    return render(
        request,
        TEMPLATE,
        {
            "pending": pending,
            "title": provider_title(pending.backend),
            "form": form,
            "other_providers": others,
            "minutes": max(1, settings.CUSTODIAN_ACCOUNT_CHOICE_TTL // 60),
        },
        status=status,
    )


def _gone(request: HttpRequest, message: str, status: int = HTTPStatus.GONE) -> HttpResponse:
    return render(request, GONE, {"message": message}, status=status)
