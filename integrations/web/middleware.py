"""Friendly pages for every failure of the login/link flow."""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest
from social_core.exceptions import SocialAuthBaseException
from social_django.middleware import SocialAuthExceptionMiddleware

from integrations.providers.registry import provider_title
from integrations.psa.messages import for_person, status_for


class AuthErrorMiddleware(SocialAuthExceptionMiddleware):
    """Render social-auth failures as a page in the site's layout, with a clear message."""

    def get_message(self, request: HttpRequest, exception: Exception) -> str:
        backend = getattr(request, "backend", None)
        provider = provider_title(backend.name) if backend is not None else "The provider"
        return for_person(getattr(exception, "code", ""), provider)

    def get_error_status(self, request: HttpRequest, exception: SocialAuthBaseException) -> int:
        status = status_for(exception.code) or super().get_error_status(request, exception)
        # Whatever a provider or a crafted callback sends, the answer is never a 500: data
        # we could not use from upstream is a bad gateway.
        return HTTPStatus.BAD_GATEWAY if status == HTTPStatus.INTERNAL_SERVER_ERROR else status
