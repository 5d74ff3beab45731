from django.urls import path

from integrations.web import account_choice, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("account/choose/", account_choice.choose, name="account_choice"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("account/password/", views.set_password, name="set_password"),
    path("connections/", views.connections, name="connections"),
    path("connections/<int:association_id>/check/", views.check_approval, name="check_approval"),
    path("connections/<int:association_id>/try/", views.try_it, name="try_it"),
    path(
        "connections/<int:association_id>/disconnect/",
        views.confirm_disconnect,
        name="confirm_disconnect",
    ),
]
