"""The site's pages: home, login, connected accounts."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from integrations.selectors import connections_of


def home(request: HttpRequest) -> HttpResponse:
    """Say what the site does and where to go next."""
    return render(request, "integrations/home.html")


class LoginView(auth_views.LoginView):
    """Log in with a provider (POST forms to /login/<backend>/) or a local password."""

    template_name = "integrations/login.html"
    redirect_authenticated_user = True


@login_required
def connections(request: HttpRequest) -> HttpResponse:
    """List the user's connected accounts with connect and disconnect buttons."""
    rows = connections_of(request.user)
    connected = {row.provider for row in rows}
    return render(
        request,
        "integrations/connections.html",
        {"connections": rows, "connected_providers": connected},
    )
