"""Who may connect a provider account for whom from the admin.

Connecting a provider account to a user lets whoever holds that provider account log in as
that user. So connecting one for someone else is as strong as changing that user (setting
their password), and must never hand an admin more rights than they already hold. The rule is
kept here, apart from the admin views, so it can be tested on its own and reused.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import QuerySet

ADD_ASSOCIATION = "social_django.add_usersocialauth"
CHANGE_USER = "integrations.change_user"
# How many of the target's extra permissions a refusal names; the rest are counted.
NAMED_PERMISSIONS = 3


def _effective_permissions(user: Any) -> set[str]:
    """The user's permissions as if active: Django reports none for an inactive user, but
    reactivating them later must not turn a harmless connection into an escalation."""
    if user.is_active:
        return user.get_all_permissions()
    shadow = copy.copy(user)
    shadow.is_active = True
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        shadow.__dict__.pop(cache, None)
    return shadow.get_all_permissions()


def may_connect_for(admin_user: Any, target: Any) -> str | None:
    """Return why `admin_user` may not connect a provider account for `target`, or None.

    For oneself the add permission on associations is enough. For anyone else the admin also
    needs the right to change users, and the target may hold no more rights than the admin:
    not superuser (unless the admin is), not staff (unless the admin is), and no permission
    the admin lacks. The reasons never name what the admin could not already see.
    """
    if not admin_user.is_active or not admin_user.has_perm(ADD_ASSOCIATION):
        return "you may not add social associations"
    if target.pk == admin_user.pk:
        return None
    if admin_user.is_superuser:
        return None
    # Checked first, so an admin who cannot manage users learns nothing about the target.
    if not admin_user.has_perm(CHANGE_USER):
        return "connecting an account for another user requires the permission to change users"
    return outranks(target, admin_user)


def outranks(target: Any, admin_user: Any) -> str | None:
    """Return how `target` holds rights that `admin_user` lacks, or None when they do not.

    Whoever may act as a user (set their password, link a login to them) gains their rights,
    so the user admin applies this rule to changing and deleting users too.
    """
    if admin_user.is_superuser or target.pk == admin_user.pk:
        return None
    if target.is_superuser:
        return "they are a superuser and you are not"
    if target.is_staff and not admin_user.is_staff:
        return "they are staff and you are not"
    missing = sorted(_effective_permissions(target) - admin_user.get_all_permissions())
    if missing:
        named = ", ".join(missing[:NAMED_PERMISSIONS])
        more = len(missing) - NAMED_PERMISSIONS
        extra = f" and {more} more" if more > 0 else ""
        return f"they have permissions you do not have ({named}{extra})"
    return None


def connectable_users(admin_user: Any, users: QuerySet) -> QuerySet:
    """Those of `users` that `admin_user` may connect a provider account for: may_connect_for
    as a query, so the connect form's autocomplete lists nobody the form would refuse.

    The target's rights are read from the database as Django's ModelBackend grants them (its
    own and its groups' permissions, whether or not it is active, as `_effective_permissions`
    does); may_connect_for still decides when the form is sent.
    """
    if not admin_user.is_active or not admin_user.has_perm(ADD_ASSOCIATION):
        return users.none()
    if admin_user.is_superuser:
        return users
    if not admin_user.has_perm(CHANGE_USER):
        return users.filter(pk=admin_user.pk)
    held = admin_user.get_all_permissions()
    lacking = [
        permission.pk
        for permission in Permission.objects.select_related("content_type")
        if f"{permission.content_type.app_label}.{permission.codename}" not in held
    ]
    allowed = (
        users.exclude(is_superuser=True)
        .exclude(user_permissions__in=lacking)
        .exclude(groups__permissions__in=lacking)
    )
    if not admin_user.is_staff:
        allowed = allowed.exclude(is_staff=True)
    return allowed  # the admin themself included: they hold no right they lack
