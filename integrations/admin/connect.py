"""Connecting a provider account for a user from the admin: the form, the redirect to the
provider, and the callback that creates the association through the login pipeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import requests
from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from social_core.actions import do_auth
from social_core.exceptions import SocialAuthBaseException
from social_django.models import UserSocialAuth
from social_django.utils import load_backend, load_strategy

from integrations.admin.base import AssociationAdminBase
from integrations.admin.connect_policy import may_connect_for
from integrations.models import User
from integrations.providers.registry import available_providers, provider_title
from integrations.psa.messages import for_admin

logger = logging.getLogger(__name__)

# Connections started from the admin and not yet completed, by OAuth state, in the session.
PENDING_SESSION_KEY = "custodian_admin_connect"
PENDING_LIFETIME = 3600  # seconds
PENDING_MAX = 20


class UserAutocomplete(AutocompleteSelect):
    """Django's autocomplete for an association's user, rendering a sent value that is no
    user id as nothing chosen (Django's own would fail on it in the database lookup)."""

    def optgroups(self, name, value, attr=None):
        ids = []
        for item in value:
            try:
                ids.append(str(User._meta.pk.to_python(item)))
            except ValidationError:
                continue
        return super().optgroups(name, ids, attr)


class ConnectForm(forms.Form):
    """Which provider, and which user the new association belongs to.

    The user is picked with the admin's autocomplete, which searches the user admin's
    search_fields and lists only users the admin may connect an account for (the user admin
    applies connect_policy.connectable_users to this field's searches). The choice is checked
    again with may_connect_for when the form is sent.
    """

    provider = forms.ChoiceField(help_text="Only providers with a client configured are offered.")
    user = forms.ModelChoiceField(
        queryset=User.objects.all(),
        help_text="Search by username, name or e-mail address. For someone else, you need the "
        "right to change users, and they may hold no rights you lack; others are not listed.",
        error_messages={"invalid_choice": "That user does not exist."},
    )

    def __init__(
        self,
        *args: Any,
        providers: Iterable[tuple[str, str]] = (),
        admin_site: AdminSite,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        field = cast(forms.ChoiceField, self.fields["provider"])
        field.choices = list(providers)
        user = cast(forms.ModelChoiceField, self.fields["user"])
        # The source field names the searches to the autocomplete view (and so to the policy).
        widget = UserAutocomplete(UserSocialAuth._meta.get_field("user"), admin_site)
        widget.choices = user.choices
        widget.is_required = user.required
        user.widget = widget


class ConnectFlowMixin(AssociationAdminBase):
    """The association admin's "Connect an account" views (add_view is the form)."""

    # -- connect from the admin --

    def add_view(self, request, form_url="", extra_context=None):
        """A small form (provider, user), then the provider's authorization page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        providers = [(info.name, info.title) for info in available_providers() if info.configured]
        if request.method == "POST":
            form = ConnectForm(request.POST, providers=providers, admin_site=self.admin_site)
            if form.is_valid():
                target = form.cleaned_data["user"]
                reason = may_connect_for(request.user, target)
                if reason is None:
                    return self._begin_connect(request, form.cleaned_data["provider"], target)
                self._refuse_connect(request, target, reason, stage="form")
                form.add_error("user", f"You may not connect an account for {target}: {reason}.")
        else:
            form = ConnectForm(
                initial={"user": request.user.pk}, providers=providers, admin_site=self.admin_site
            )
        callbacks = [
            (
                title,
                request.build_absolute_uri(
                    reverse(self.url_name("connect_complete"), args=[name])
                ),
            )
            for name, title in providers
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Connect an account",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "providers": providers,
            "callbacks": callbacks,
            "media": self.media + form.media,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/custodian/connect.html", context)

    def _begin_connect(self, request: HttpRequest, provider: str, user: User) -> HttpResponse:
        add_url = reverse(self.url_name("add"))
        title = provider_title(provider)
        try:
            backend = self._backend(request, provider)
            response = do_auth(backend)
        except SocialAuthBaseException as error:
            self._connect_error(request, title, error.code, user)
            return HttpResponseRedirect(add_url)
        except requests.RequestException:
            self._connect_error(request, title, "connection_failed", user)
            return HttpResponseRedirect(add_url)
        location = response.get("Location", "") if response.status_code in (301, 302) else ""
        state = parse_qs(urlsplit(location).query).get("state", [""])[0]
        if not state:
            messages.error(
                request,
                f"Connecting {title} for {user} from the admin needs an OAuth state parameter, "
                "and this provider's flow has none. Nothing was connected.",
            )
            return HttpResponseRedirect(add_url)
        now = int(time.time())
        pending = {
            key: value
            for key, value in (request.session.get(PENDING_SESSION_KEY) or {}).items()
            if isinstance(value, dict) and now - value.get("started", 0) < PENDING_LIFETIME
        }
        pending[state] = {"backend": provider, "user_id": user.pk, "started": now}
        request.session[PENDING_SESSION_KEY] = dict(
            sorted(pending.items(), key=lambda item: item[1]["started"])[-PENDING_MAX:]
        )
        return response

    def connect_complete_view(self, request: HttpRequest, backend: str) -> HttpResponse:
        """Where the provider returns: run the login pipeline for the chosen user, without
        logging anyone in, and land on the new association's change page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        add_url = reverse(self.url_name("add"))
        title = provider_title(backend)
        state = request.GET.get("state", "")
        pending = request.session.get(PENDING_SESSION_KEY) or {}
        entry = pending.pop(state, None) if isinstance(state, str) and state else None
        request.session[PENDING_SESSION_KEY] = pending
        if not isinstance(entry, dict) or entry.get("backend") != backend:
            self._connect_error(request, title, "state_mismatch")
            return HttpResponseRedirect(add_url)
        if time.time() - entry.get("started", 0) >= PENDING_LIFETIME:
            self._connect_error(request, title, "state_mismatch")
            return HttpResponseRedirect(add_url)
        user_id = entry.get("user_id")
        user = User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None
        if user is None:
            messages.error(request, "The user chosen for this connection no longer exists.")
            return HttpResponseRedirect(add_url)
        # Again, before any code is exchanged: the target's rights may have grown since the
        # form was sent, and the pending entry is only as trustworthy as the session.
        reason = may_connect_for(request.user, user)
        if reason is not None:
            self._refuse_connect(request, user, reason, stage="callback")
            messages.error(
                request,
                f"Connecting {title} refused: you may not connect an account for {user}: "
                f"{reason}. Nothing was connected.",
            )
            return HttpResponseRedirect(add_url)
        try:
            backend_obj = self._backend(request, backend)
            # The same pipeline as a user linking an account while logged in: state and PKCE
            # are checked, tokens normalized and encrypted, "connected" recorded (actor: the
            # request's user, the admin). Not do_complete: that would log `user` in.
            result = backend_obj.complete(user=user, redirect_name="next", request=request)
        except SocialAuthBaseException as error:
            logger.warning(
                "Admin connect of %s for user %s failed: %s", backend, user.pk, error.code
            )
            self._connect_error(request, title, error.code, user)
            return HttpResponseRedirect(add_url)
        except (requests.RequestException, ValueError) as error:
            logger.warning(
                "Admin connect of %s for user %s failed: %s", backend, user.pk, type(error).__name__
            )
            self._connect_error(request, title, "connection_failed", user)
            return HttpResponseRedirect(add_url)
        association = getattr(result, "social_user", None)
        if not isinstance(result, User) or association is None:
            messages.error(
                request,
                f"Connecting {title} for {user} did not finish (the pipeline stopped). "
                "Nothing was connected.",
            )
            return HttpResponseRedirect(add_url)
        self.log_addition(
            request,
            association,
            f"Connected {title} account {association.uid} for user {user} (id {user.pk}) "
            "from the admin.",
        )
        messages.success(request, f"Connected {title} account {association.uid} to {user}.")
        return HttpResponseRedirect(reverse(self.url_name("change"), args=[association.pk]))

    def _refuse_connect(
        self, request: HttpRequest, target: User, reason: str, *, stage: str
    ) -> None:
        """Leave a trace of a refused connection: an attempt to connect for someone one may
        not is what an escalation looks like, so it goes to the log and the target's history."""
        logger.warning(
            "Admin connect refused at the %s: admin user %s may not connect an account for "
            "user %s: %s",
            stage,
            request.user.pk,
            target.pk,
            reason,
        )
        # In the target user's admin log (not this admin's model), where their history is read.
        LogEntry.objects.log_actions(
            user_id=cast(int, request.user.pk),  # the admin is logged in
            queryset=[target],
            action_flag=CHANGE,
            change_message=f"Refused: connect an account for this user ({reason}).",
            single_object=True,
        )

    def _backend(self, request: HttpRequest, provider: str):
        callback = reverse(self.url_name("connect_complete"), args=[provider])
        return load_backend(load_strategy(request), provider, redirect_uri=callback)

    @staticmethod
    def _connect_error(request: HttpRequest, title: str, code: str, user: Any = None) -> None:
        reason = for_admin(code, title)
        target = f" for {user}" if user is not None else ""
        messages.error(
            request, f"Connecting {title}{target} failed: {reason}. Nothing was connected."
        )
