"""What a person reads after disconnecting an account, or after asking for another account
and getting the same one back: plain sentences that say what happened at the provider, with
a link to the provider's own page where its profile knows one.

The sentences are HTML built with format_html: everything that is not our own text (the
provider's title, which a declaration sets, the account's name, the URL) is escaped, and a
URL becomes a link only when it is one people may be sent to (`is_page_url`: https, or http on
loopback). Django's message storage keeps the result marked safe, so the message template
prints it as it is, without `|safe`.
"""

from __future__ import annotations

from django.contrib import messages
from django.utils.html import format_html
from django.utils.safestring import SafeString

from backends.declaration import is_page_url
from integrations.psa.disconnect import GRANT_ENDED, NO_REVOCATION, NOTHING_STORED, Disconnected


def page_url(url: str) -> str:
    """`url` when people may be sent there (https, or http on loopback), else ""."""
    return url if url and is_page_url(url) else ""


def link(url: str, text: str) -> SafeString | None:
    """A link to the provider's page `url`, opened beside the site; None when `url` is not
    one people may be sent to."""
    if not page_url(url):
        return None
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text)


def _remove_access(title: str, connected_apps_url: str) -> SafeString:
    """Where to end the access by hand: the provider's page of connected apps, else its
    account settings, named."""
    page = link(connected_apps_url, f"{title}'s page of connected apps")
    if page is not None:
        return format_html("remove this site's access on {}.", page)
    return format_html("remove this site's access in your {} account's settings.", title)


def disconnected(
    title: str, name: str, outcome: Disconnected, connected_apps_url: str
) -> tuple[int, SafeString]:
    """The message level and sentence for a disconnect that had `outcome`."""
    if outcome.revoked is True:
        return messages.SUCCESS, format_html(
            "{} account {} was disconnected, and its access was revoked at {}.",
            title, name, title,
        )
    remove = _remove_access(title, connected_apps_url)
    if outcome.revoked is False:
        return messages.WARNING, format_html(
            "Disconnected here; {} did not confirm the revocation. Account {} may still let "
            "this site in: {}",
            title, name, remove,
        )
    if outcome.not_tried == NOTHING_STORED:
        return messages.SUCCESS, format_html(
            "{} account {} was disconnected. This site held no token for it, so there was "
            "nothing to revoke at {}.",
            title, name, title,
        )
    if outcome.not_tried == GRANT_ENDED:
        return messages.SUCCESS, format_html(
            "{} account {} was disconnected. {} had already ended this site's access.",
            title, name, title,
        )
    if outcome.not_tried == NO_REVOCATION:
        return messages.INFO, format_html(
            "{} account {} was disconnected here. {} offers no revocation, so this site "
            "could not end the access you gave there: {}",
            title, name, title, remove,
        )
    return messages.WARNING, format_html(
        "{} account {} was disconnected here, but this site could not ask {} to revoke the "
        "access you gave: {}",
        title, name, title, remove,
    )


def no_longer_offered(title: str, name: str, connected_apps_url: str) -> SafeString:
    """A connection to a provider the site no longer offers was removed without revocation."""
    return format_html(
        "{} account {} was disconnected here. {} is no longer offered, so the access you gave "
        "could not be revoked there: {}",
        title, name, title, _remove_access(title, connected_apps_url),
    )


def sign_out_first(title: str, sign_out_url: str) -> SafeString:
    """"sign out at {title}", linked to its sign-out page when the profile knows it."""
    return link(sign_out_url, f"sign out at {title}") or format_html("sign out at {}", title)


def already_connected(
    title: str, name: str, *, chooses_account: bool, sign_out_url: str
) -> SafeString:
    """Asked for another account, the provider gave back one that is already connected: how
    to get another one next time (pick it when the provider asks, or sign out there first)."""
    if chooses_account:
        return format_html(
            "{} account {} is already connected, so nothing was added. To connect a different "
            "{} account, choose “Connect another {} account” again and pick or add that "
            "account when {} asks which one to use.",
            title, name, title, title, title,
        )
    return format_html(
        "{} account {} is already connected, so nothing was added. To connect a different "
        "{} account, {} first, then choose “Connect another {} account” again.",
        title, name, title, sign_out_first(title, sign_out_url), title,
    )
