"""Routes of the demo provider, on Monzo's paths where Monzo has one."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from oauth2_provider import views as dot_views

from . import account, controls, oidc, views

# Under DOT's own namespace and URL names: DOT's discovery document and its issuer are
# built by reversing "oauth2_provider:<name>", so naming the demo's endpoints so points
# the document at them, on their Monzo-shaped paths, with no prefix that would become
# part of the issuer.
oauth2_provider_urlpatterns = [
    path("oauth2/authorize/", views.AuthorizationView.as_view(), name="authorize"),
    # Monzo's token path has no trailing slash; accept DOT's usual one as well.
    path("oauth2/token", views.TokenView.as_view(), name="token"),
    path("oauth2/token/", views.TokenView.as_view()),
    path("oauth2/revoke_token/", views.RevokeTokenView.as_view(), name="revoke-token"),
    path("oauth2/userinfo", dot_views.UserInfoView.as_view(), name="user-info"),
    path(
        ".well-known/openid-configuration",
        oidc.DiscoveryView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(".well-known/jwks.json", oidc.JwksView.as_view(), name="jwks-info"),
]

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include((oauth2_provider_urlpatterns, "oauth2_provider"))),
    path("oauth2/logout", views.LogoutView.as_view()),
    path("ping/whoami", views.WhoAmIView.as_view()),
    path("accounts", views.AccountsView.as_view()),
    path("approve/", views.ApproveView.as_view()),
    path("login/", auth_views.LoginView.as_view(template_name="demo_provider/login.html")),
    # GET: a page with a "Sign out" button; POST: signs out (where sites send people who
    # want to connect another account).
    path("logout/", account.SignOutView.as_view()),
    path("apps/", account.ConnectedAppsView.as_view()),
    path("", account.home),
]

if settings.DEMO_PROVIDER_TEST_CONTROLS:
    urlpatterns += controls.urlpatterns
