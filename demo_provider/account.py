"""The person's side of the demo provider: what it is, signing out, and the apps they gave
access to.

A real provider links whichever account is signed in there when a site sends the person to
it, so a person who wants to connect a second account signs out first: the sign-out page is
where the site sends them. Its connected-apps page is where a person ends an app's access by
hand, as they would at a real provider when the app could not revoke it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import transaction
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views import View
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_refresh_token_model,
)


def home(request: HttpRequest) -> HttpResponse:
    """Say what this server is, whether you are signed in, and where to go."""
    return render(request, "demo_provider/home.html")


class SignOutView(auth_views.LogoutView):
    """GET asks (a page with a "Sign out" button); POST signs out, as Django's LogoutView.

    Signing out ends the session here only: apps keep the access they were given.
    """

    http_method_names = ["get", "post", "options"]
    template_name = "demo_provider/logged_out.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return render(request, "demo_provider/sign_out.html")


def _live_grants(user: Any) -> Q:
    """Applications holding an unexpired access token or an unrevoked refresh token of
    `user`."""
    return Q(accesstoken__user=user, accesstoken__expires__gt=timezone.now()) | Q(
        refreshtoken__user=user, refreshtoken__revoked__isnull=True
    )


class ConnectedAppsView(LoginRequiredMixin, View):
    """The apps you gave access to, each with "Remove access"."""

    def get(self, request: HttpRequest) -> HttpResponse:
        applications = (
            get_application_model()
            .objects.filter(_live_grants(request.user))
            .annotate(since=Max("accesstoken__created"))
            .distinct()
            .order_by("name")
        )
        removed = (
            get_application_model()
            .objects.filter(client_id=request.GET.get("removed", ""))
            .values_list("name", flat=True)
            .first()
        )
        return render(
            request,
            "demo_provider/apps.html",
            {"applications": applications, "removed": removed},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        """End the application's access: every refresh token revoked, every access token
        deleted, so both stop working at once."""
        application = get_object_or_404(
            get_application_model(), client_id=request.POST.get("client_id", "")
        )
        with transaction.atomic():
            for refresh_token in get_refresh_token_model().objects.filter(
                user=request.user, application=application, revoked__isnull=True
            ):
                refresh_token.revoke()
            get_access_token_model().objects.filter(
                user=request.user, application=application
            ).delete()
        return HttpResponseRedirect(f"/apps/?removed={application.client_id}")
