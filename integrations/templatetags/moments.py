"""Times as people read them: "in 42 minutes", "3 hours ago", "just now".

The server renders the relative phrase (pages work without JavaScript) inside a ``<time>``
element carrying the exact instant in ISO 8601 UTC. static/js/moments.js then rewrites the
absolute part into the reader's own time zone and keeps the phrase fresh while the page stays
open. The phrase rules here and there are the same, so the text does not jump when the
script takes over.

``{% moment value %}`` shows the phrase with the absolute time below it; ``compact=True``
keeps the absolute time in the tooltip only (narrow admin columns). ``past_prefix`` words a
past moment ("expired " + "3 hours ago").
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

# The script that localises and refreshes the times (a static file; base.html loads it too).
SCRIPT = "js/moments.js"

# Unit lengths in seconds, longest first; a month and a year are their Gregorian averages,
# so 364 days read "11 months", not "12 months" (static/js/moments.js uses the same table).
UNITS = (
    ("year", 31_556_952),
    ("month", 2_629_746),
    ("week", 604_800),
    ("day", 86_400),
    ("hour", 3_600),
    ("minute", 60),
)
NBSP = "\xa0"  # between number and unit: "42 minutes" never breaks over two lines


def span(seconds: float) -> str:
    """The largest whole unit in `seconds` (at least a minute): "42 minutes", "1 day"."""
    seconds = max(abs(seconds), 60)
    for name, size in UNITS:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count}{NBSP}{name}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable: a minute is the smallest unit")  # pragma: no cover


def relative_phrase(moment: datetime, now: datetime | None = None, *, past_prefix: str = "") -> str:
    """Say when `moment` is, seen from `now`: "in 42 minutes", "in under a minute",
    "just now", "3 hours ago"; past phrases get `past_prefix` ("expired 3 hours ago")."""
    now = now or timezone.now()
    seconds = (moment - now).total_seconds()
    if 0 < seconds < 60:
        return "in under a minute"
    if seconds > 0:
        return f"in {span(seconds)}"
    if seconds > -60:
        return f"{past_prefix}just now"
    return f"{past_prefix}{span(seconds)} ago"


def iso_utc(moment: datetime) -> str:
    """The instant in ISO 8601, UTC, to the second: what ``<time datetime>`` carries."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def absolute_utc(moment: datetime) -> str:
    """The absolute time in UTC, shown until the script puts it in the reader's time zone."""
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y, %H:%M} UTC"


def moment_html(
    moment: datetime | None,
    *,
    now: datetime | None = None,
    past_prefix: str = "",
    compact: bool = False,
    empty: str = "—",
) -> SafeString:
    """The ``<time>`` element for `moment` (`empty`, escaped, when there is none)."""
    if moment is None:
        return format_html("{}", empty)
    phrase = relative_phrase(moment, now, past_prefix=past_prefix)
    absolute = absolute_utc(moment)
    if compact:
        body = format_html('<span class="moment-relative">{}</span>', phrase)
    else:
        body = format_html(
            '<span class="moment-relative">{}</span> <span class="moment-absolute">{}</span>',
            phrase,
            absolute,
        )
    return format_html(
        '<time class="moment" datetime="{}" title="{}" data-past-prefix="{}">{}</time>',
        iso_utc(moment),
        absolute,
        past_prefix,
        body,
    )


@register.simple_tag
def moment(
    value: datetime | None, past_prefix: str = "", compact: bool = False, empty: str = "—"
) -> SafeString:
    """``{% moment value %}``: see moment_html."""
    return moment_html(value, past_prefix=past_prefix, compact=compact, empty=empty)
