"""Routes of the demo provider, on Monzo's paths where Monzo has one."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, path

from . import controls, views

urlpatterns: list[URLPattern] = [
    path("oauth2/authorize/", views.AuthorizationView.as_view()),
    # Monzo's token path has no trailing slash; accept DOT's usual one as well.
    path("oauth2/token", views.TokenView.as_view()),
    path("oauth2/token/", views.TokenView.as_view()),
    path("oauth2/revoke_token/", views.RevokeTokenView.as_view()),
    path("oauth2/logout", views.LogoutView.as_view()),
    path("ping/whoami", views.WhoAmIView.as_view()),
    path("accounts", views.AccountsView.as_view()),
    path("approve/", views.ApproveView.as_view()),
    path("login/", auth_views.LoginView.as_view(template_name="demo_provider/login.html")),
    path(
        "logout/",
        auth_views.LogoutView.as_view(template_name="demo_provider/logged_out.html"),
    ),
]

if settings.DEMO_PROVIDER_TEST_CONTROLS:
    urlpatterns += controls.urlpatterns
