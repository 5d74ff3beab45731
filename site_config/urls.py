from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # /login/<backend>/, /complete/<backend>/, /disconnect/<backend>/[<id>/]
    path("", include("social_django.urls", namespace="social")),
    path("", include("integrations.web.urls")),
]
