"""The admin of social associations: token health at a glance, history, actions, connect.

Replaces social_django's UserSocialAuth admin. Nothing here ever renders a token: secrets are
shown as fingerprints (last 6 hex digits of their SHA-256), and the raw extra_data is never a
form field, so its ciphertext never reaches a page either.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from social_core.actions import do_auth
from social_core.exceptions import SocialAuthBaseException
from social_django.admin import UserSocialAuthOption
from social_django.models import UserSocialAuth
from social_django.utils import load_backend, load_strategy

from integrations.store import crypto

from integrations.admin import health
from integrations.admin.connect_policy import may_connect_for, outranks
from integrations.store.history import record_event
from integrations.psa.disconnect import disconnect
from integrations.exceptions import ProviderNotOffered, ReauthRequired, RefreshFailed
from integrations.models import CredentialEvent, User
from integrations.providers.registry import available_providers, provider_title
from integrations.refreshing.single_flight import refresh
from integrations.psa.messages import for_admin
from integrations.store.times import to_datetime
from integrations.store.credentials import SECRET_FIELDS, fingerprint

logger = logging.getLogger(__name__)

MASK = "••••••"
# How many events the change page shows; the rest are one click away.
HISTORY_CAP = 50
# Connections started from the admin and not yet completed, by OAuth state, in the session.
PENDING_SESSION_KEY = "custodian_admin_connect"
PENDING_LIFETIME = 3600  # seconds
PENDING_MAX = 20



# --- Masking ------------------------------------------------------------------------------------


def masked(value: Any) -> str:
    """Return what an admin sees instead of a stored secret: a mask and its fingerprint."""
    if not isinstance(value, str) or not value:
        return f"{MASK} (empty)"
    try:
        plaintext = crypto.decrypt(value)
    except crypto.DecryptionError:
        return f"{MASK} (undecryptable with the configured keys)"
    return f"{MASK} (fp {fingerprint(plaintext)})"


def redacted(data: Any) -> Any:
    """Return a copy of `data` with every secret field and every ciphertext masked."""
    if isinstance(data, dict):
        return {
            key: masked(value) if key in SECRET_FIELDS else redacted(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redacted(item) for item in data]
    if isinstance(data, str) and data.startswith(crypto.PREFIX):
        return masked(data)
    return data


def _token_fingerprint(association: UserSocialAuth, field: str) -> str:
    value = (association.extra_data or {}).get(field)
    if not value:
        return "none stored"
    try:
        return f"fp {fingerprint(crypto.decrypt(value))}"
    except crypto.DecryptionError:
        return "undecryptable with the configured keys"



def _state(association: UserSocialAuth):
    # A reverse one-to-one: select_related caches a missing row as "absent", and the
    # RelatedObjectDoesNotExist it raises is an AttributeError.
    return getattr(association, "credential_state", None)


def _label(association: UserSocialAuth) -> str:
    return f"{provider_title(association.provider)} account {association.uid} of {association.user}"


# --- Filters, inline, forms -----------------------------------------------------------------------


class HealthFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(item.key, item.label) for item in health.HEALTHS]

    def queryset(self, request, queryset):
        item = health.BY_KEY.get(self.value() or "")
        if item is None:
            return queryset
        return queryset.filter(health_rank=item.rank)


class CappedEventFormSet(BaseInlineFormSet):
    """The newest HISTORY_CAP events only; `truncated` and `total` tell the template more exist."""

    cap = HISTORY_CAP
    truncated = False

    def get_queryset(self):
        if not hasattr(self, "_capped"):
            rows = list(super().get_queryset()[: self.cap + 1])
            self.truncated = len(rows) > self.cap
            self._capped = rows[: self.cap]
        return self._capped

    def total(self) -> int:
        self.get_queryset()
        return super().get_queryset().count() if self.truncated else len(self._capped)


class CredentialEventInline(admin.TabularInline):
    """The association's history, newest first, read-only."""

    model = CredentialEvent
    fk_name = "association"
    formset = CappedEventFormSet
    template = "admin/custodian/credentialevent_inline.html"
    fields = ("when", "kind", "actor", "detail")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = "history event"
    verbose_name_plural = "history (newest first)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor").order_by("-created", "-pk")

    @admin.display(description="when")
    def when(self, obj: CredentialEvent) -> str:
        return f"{obj.created:%Y-%m-%d %H:%M:%S} UTC"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ConnectForm(forms.Form):
    """Which provider, and which user the new association belongs to."""

    provider = forms.ChoiceField(help_text="Only providers with a client configured are offered.")
    user = forms.ModelChoiceField(
        queryset=User.objects.all(),
        to_field_name="username",
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 30}),
        help_text="Username of the user the provider account is linked to. For someone else, "
        "you need the right to change users, and they may hold no rights you lack.",
        error_messages={"invalid_choice": "There is no user with that username."},
    )

    def __init__(self, *args: Any, providers: Iterable[tuple[str, str]] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = list(providers)


# --- The association admin ----------------------------------------------------------------------


admin.site.unregister(UserSocialAuth)


@admin.register(UserSocialAuth)
class AssociationAdmin(UserSocialAuthOption):
    """Social associations: health, history, refresh, revoke and disconnect, connect."""

    list_display = (
        "user",
        "provider",
        "account_uid",
        "status_badge",
        "expires_in",
        "last_refreshed",
        "created_at",
    )
    list_display_links = ("user", "account_uid")
    list_filter = ("provider", HealthFilter)
    list_select_related = ("user", "credential_state")
    list_per_page = 50
    search_fields = ("user__username", "user__email", "uid")
    search_help_text = "Search by username, e-mail address or account uid."
    actions = ["refresh_now", "revoke_and_disconnect"]
    inlines = [CredentialEventInline]
    change_form_template = "admin/custodian/usersocialauth_change_form.html"
    change_list_template = "admin/custodian/usersocialauth_change_list.html"
    fieldsets = (
        (None, {"fields": ("user", "provider", "uid", "status_badge")}),
        (
            "Token",
            {
                "fields": (
                    "expires",
                    "last_refreshed",
                    "access_token_fingerprint",
                    "refresh_token_fingerprint",
                    "token_scope",
                )
            },
        ),
        ("Stored extra_data (secrets redacted)", {"fields": ("redacted_extra_data",)}),
        ("Dates", {"fields": ("created", "modified")}),
    )
    readonly_fields = (
        "user",
        "provider",
        "uid",
        "status_badge",
        "expires",
        "last_refreshed",
        "access_token_fingerprint",
        "refresh_token_fingerprint",
        "token_scope",
        "redacted_extra_data",
        "created",
        "modified",
    )

    class Media:
        css = {"all": ("css/custodian-admin.css",)}

    # -- queryset, search, ordering --

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user", "credential_state")
        return health.with_health(queryset)

    def get_search_fields(self, request=None):
        return self.search_fields

    def get_ordering(self, request):
        # Trouble first, then what expires soonest.
        return [F("health_rank").desc(), F("credential_state__expires_at").asc(nulls_last=True)]

    # -- columns and fields --

    @admin.display(description="account uid", ordering="uid")
    def account_uid(self, obj: UserSocialAuth) -> str:
        return obj.uid

    @admin.display(description="status", ordering="health_rank")
    def status_badge(self, obj: UserSocialAuth) -> str:
        item = health.BY_RANK.get(getattr(obj, "health_rank", None), health.UNKNOWN)
        reason = (obj.extra_data or {}).get("status_reason") or ""
        title = item.meaning + (f" (reason: {reason})" if reason else "")
        return format_html(
            '<span class="custodian-badge custodian-{}" title="{}">{}</span>',
            item.key,
            title,
            item.label,
        )

    @admin.display(
        description="expires in",
        ordering=F("credential_state__expires_at").asc(nulls_last=True),
    )
    def expires_in(self, obj: UserSocialAuth) -> str:
        state = _state(obj)
        if state is None:
            return "—"
        if state.expires_at is None:
            return "no expiry"
        return format_html(
            '<span title="{}">{}</span>',
            f"{state.expires_at:%Y-%m-%d %H:%M:%S} UTC",
            health.expires_phrase(state.expires_at),
        )

    @admin.display(
        description="last refreshed",
        ordering=F("credential_state__last_refreshed_at").asc(nulls_last=True),
    )
    def last_refreshed(self, obj: UserSocialAuth) -> str:
        state = _state(obj)
        moment = state.last_refreshed_at if state is not None else None
        if moment is None:
            return "never"
        return format_html(
            '<span title="{}">{}</span>',
            f"{moment:%Y-%m-%d %H:%M:%S} UTC",
            health.ago_phrase(moment),
        )

    @admin.display(description="created", ordering="created")
    def created_at(self, obj: UserSocialAuth) -> str:
        return format_html('<span title="{}">{}</span>', f"{obj.created:%Y-%m-%d %H:%M:%S} UTC",
                           f"{obj.created:%Y-%m-%d}")

    @admin.display(description="expires")
    def expires(self, obj: UserSocialAuth) -> str:
        state = _state(obj)
        if state is None:
            return "— (no credential state recorded)"
        if state.expires_at is None:
            return "no expiry"
        phrase = health.expires_phrase(state.expires_at)
        return f"{state.expires_at:%Y-%m-%d %H:%M:%S} UTC ({phrase})"

    @admin.display(description="access token")
    def access_token_fingerprint(self, obj: UserSocialAuth) -> str:
        return format_html(
            '<code class="custodian-fp">{}</code>', _token_fingerprint(obj, "access_token")
        )

    @admin.display(description="refresh token")
    def refresh_token_fingerprint(self, obj: UserSocialAuth) -> str:
        return format_html(
            '<code class="custodian-fp">{}</code>', _token_fingerprint(obj, "refresh_token")
        )

    @admin.display(description="scope")
    def token_scope(self, obj: UserSocialAuth) -> str:
        return (obj.extra_data or {}).get("scope") or "—"

    @admin.display(description="extra_data")
    def redacted_extra_data(self, obj: UserSocialAuth) -> str:
        text = json.dumps(
            redacted(obj.extra_data or {}), indent=2, sort_keys=True, ensure_ascii=False
        )
        return format_html('<pre class="custodian-json">{}</pre>', text)

    # -- change page: read-only, never writes extra_data --

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "refresh_url": reverse(self._url_name("refresh"), args=[object_id])
            if self.has_change_permission(request)
            else "",
            "revoke_url": reverse(self._url_name("delete"), args=[object_id])
            if self.has_delete_permission(request)
            else "",
            "events_url": reverse("admin:integrations_credentialevent_changelist")
            + f"?association__id__exact={object_id}",
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        # Every field is read-only: writing the whole row would put back the extra_data read
        # when the page was opened, undoing any token rotation since. Write changed fields only.
        obj.save(update_fields=list(form.changed_data))

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting must go through "Revoke and disconnect" (revocation and history).
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self):
        urls = [
            path(
                "connect/complete/<str:backend>/",
                self.admin_site.admin_view(self.connect_complete_view),
                name=self._url_name("connect_complete", namespaced=False),
            ),
            path(
                "<path:object_id>/refresh/",
                self.admin_site.admin_view(self.refresh_view),
                name=self._url_name("refresh", namespaced=False),
            ),
        ]
        return urls + super().get_urls()

    def _url_name(self, view: str, *, namespaced: bool = True) -> str:
        name = f"{self.opts.app_label}_{self.opts.model_name}_{view}"
        return f"{self.admin_site.name}:{name}" if namespaced else name

    # -- refresh --

    @admin.action(description="Refresh now", permissions=["change"])
    def refresh_now(self, request: HttpRequest, queryset) -> None:
        for association in queryset:
            self._refresh_one(request, association)

    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: refresh one association from its change page, then go back there."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        association = self.get_object(request, unquote(object_id))
        if association is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, association):
            raise PermissionDenied
        self._refresh_one(request, association)
        return HttpResponseRedirect(reverse(self._url_name("change"), args=[association.pk]))

    def _refresh_one(self, request: HttpRequest, association: UserSocialAuth) -> None:
        label = _label(association)
        try:
            credentials = refresh(association, force=True, actor=request.user)
        except ProviderNotOffered:
            outcome = "not refreshed (the provider is no longer offered)"
            messages.warning(request, f"{label}: {outcome}; it can only be disconnected.")
        except ReauthRequired as error:
            outcome = f"reauth required ({error.reason or 'the provider rejected the grant'})"
            messages.warning(request, f"{label}: {outcome}; the user must reconnect.")
        except RefreshFailed as error:
            outcome = f"refresh failed ({error.cause})"
            messages.error(
                request,
                f"{label}: {outcome}; the stored credentials are unchanged. Try again later.",
            )
        except SocialAuthBaseException as error:
            outcome = f"refresh failed ({error.code})"
            messages.error(request, f"{label}: {outcome}.")
        else:
            expires_at = to_datetime(credentials.expires_at)
            outcome = f"refreshed, new access token fp {fingerprint(credentials.access_token)}"
            expiry = f"expires {health.expires_phrase(expires_at)}" if expires_at else "no expiry"
            messages.success(request, f"{label}: {outcome}, {expiry}.")
        self.log_change(request, association, f"Refresh now: {outcome}.")

    # -- revoke and disconnect --

    @admin.action(description="Revoke and disconnect", permissions=["delete"])
    def revoke_and_disconnect(self, request: HttpRequest, queryset):
        associations = list(queryset)
        if request.POST.get("post") == "yes":
            for association in associations:
                self._disconnect_one(request, association)
            return None
        return self._revoke_confirmation(
            request,
            associations,
            form_action=reverse(self._url_name("changelist")),
            cancel_url=reverse(self._url_name("changelist")),
            via_action=True,
        )

    def delete_view(self, request, object_id, extra_context=None):
        """The change page's "Delete" is "Revoke and disconnect" too, with the same confirmation."""
        association = self.get_object(request, unquote(object_id))
        if association is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_delete_permission(request, association):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("post") == "yes":
            self._disconnect_one(request, association)
            return HttpResponseRedirect(reverse(self._url_name("changelist")))
        return self._revoke_confirmation(
            request,
            [association],
            form_action=request.path,
            cancel_url=reverse(self._url_name("change"), args=[association.pk]),
            via_action=False,
        )

    def delete_model(self, request, obj):
        self._disconnect_one(request, obj, log=False)

    def delete_queryset(self, request, queryset):
        for association in queryset:
            self._disconnect_one(request, association, log=False)

    def _revoke_confirmation(
        self,
        request: HttpRequest,
        associations: list[UserSocialAuth],
        *,
        form_action: str,
        cancel_url: str,
        via_action: bool,
    ) -> TemplateResponse:
        users = {association.user_id for association in associations}
        selected = {association.pk for association in associations}
        others = Counter(
            UserSocialAuth.objects.filter(user_id__in=users)
            .exclude(pk__in=selected)
            .values_list("user_id", flat=True)
        )
        rows = []
        for association in associations:
            user = association.user
            stranded = not user.has_usable_password() and not others[user.pk]
            rows.append(
                {
                    "association": association,
                    "label": _label(association),
                    "warning": f"{user} has no password and no other connected account: their "
                    f"next login with {provider_title(association.provider)} creates a new, "
                    "empty user."
                    if stranded
                    else "",
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke and disconnect?",
            "subtitle": None,
            "opts": self.opts,
            "rows": rows,
            "form_action": form_action,
            "cancel_url": cancel_url,
            "via_action": via_action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/custodian/revoke_confirmation.html", context)

    def _disconnect_one(
        self, request: HttpRequest, association: UserSocialAuth, *, log: bool = True
    ) -> None:
        """Revoke at the provider when it can, record the history with the admin as actor,
        and delete. A failed revocation never keeps the association (it is reported)."""
        label = _label(association)
        title = provider_title(association.provider)
        if log:
            self.log_deletions(request, [association])
        outcome = disconnect(
            association, actor=request.user, request=request, detail="from the admin"
        )
        if outcome.revoked is True:
            messages.success(request, f"{label}: revoked at {title} and disconnected.")
        elif outcome.revoked is False:
            messages.warning(
                request,
                f"{label}: disconnected, but revocation at {title} failed ({outcome.reason}); "
                "the grant may still be valid there.",
            )
        else:
            messages.success(request, f"{label}: disconnected ({outcome.reason}).")

    # -- connect from the admin --

    def add_view(self, request, form_url="", extra_context=None):
        """A small form (provider, user), then the provider's authorization page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        providers = [(info.name, info.title) for info in available_providers() if info.configured]
        if request.method == "POST":
            form = ConnectForm(request.POST, providers=providers)
            if form.is_valid():
                target = form.cleaned_data["user"]
                reason = may_connect_for(request.user, target)
                if reason is None:
                    return self._begin_connect(request, form.cleaned_data["provider"], target)
                self._refuse_connect(request, target, reason, stage="form")
                form.add_error("user", f"You may not connect an account for {target}: {reason}.")
        else:
            form = ConnectForm(initial={"user": request.user.get_username()}, providers=providers)
        callbacks = [
            (
                title,
                request.build_absolute_uri(
                    reverse(self._url_name("connect_complete"), args=[name])
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
        add_url = reverse(self._url_name("add"))
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
        add_url = reverse(self._url_name("add"))
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
        user = User.objects.filter(pk=entry.get("user_id")).first()
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
        return HttpResponseRedirect(reverse(self._url_name("change"), args=[association.pk]))

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
        self.log_change(request, target, f"Refused: connect an account for this user ({reason}).")

    def _backend(self, request: HttpRequest, provider: str):
        callback = reverse(self._url_name("connect_complete"), args=[provider])
        return load_backend(load_strategy(request), provider, redirect_uri=callback)

    @staticmethod
    def _connect_error(request: HttpRequest, title: str, code: str, user: Any = None) -> None:
        reason = for_admin(code, title)
        target = f" for {user}" if user is not None else ""
        messages.error(
            request, f"Connecting {title}{target} failed: {reason}. Nothing was connected."
        )


# --- The whole history, read-only ----------------------------------------------------------------


@admin.register(CredentialEvent)
class CredentialEventAdmin(admin.ModelAdmin):
    """Every credential event, including those of disconnected associations. Read-only."""

    list_display = (
        "created", "kind", "provider", "uid", "user", "actor", "detail", "association_link"
    )
    list_filter = ("kind", "provider")
    list_select_related = ("user", "actor")
    search_fields = ("uid", "user__username", "user__email", "detail")
    search_help_text = "Search by account uid, username, e-mail address or detail."
    date_hierarchy = "created"
    list_per_page = 100

    @admin.display(description="association")
    def association_link(self, obj: CredentialEvent) -> str:
        if obj.association_id is None:
            return "— (disconnected)"
        url = reverse("admin:social_django_usersocialauth_change", args=[obj.association_id])
        return format_html('<a href="{}">#{}</a>', url, obj.association_id)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class CustodianUserAdmin(UserAdmin):
    """Django's user admin, plus the provider that created the user."""

    list_display = (*UserAdmin.list_display, "signup_provider")
    list_filter = (*UserAdmin.list_filter, "signup_provider")
    fieldsets = (*UserAdmin.fieldsets, ("Custodian", {"fields": ("signup_provider",)}))
    readonly_fields = ("signup_provider",)
    # Only a superuser hands out rights: anyone else with "change user" could otherwise make
    # themselves (or a friend) superuser, or join a stronger group.
    RIGHTS_FIELDS = ("is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, *self.RIGHTS_FIELDS)

    def has_change_permission(self, request, obj=None) -> bool:
        """No changing (password included) a user who holds rights the admin lacks."""
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or outranks(obj, request.user) is None)

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or outranks(obj, request.user) is None)

    def delete_queryset(self, request, queryset) -> None:
        """The bulk action checks no object: refuse the whole batch if one outranks."""
        if any(outranks(user, request.user) for user in queryset):
            raise PermissionDenied
        super().delete_queryset(request, queryset)
