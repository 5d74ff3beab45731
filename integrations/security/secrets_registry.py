"""Every secret value this process knows, so that redaction can mask it wherever it shows up.

Masking by name (``access_token=...``) misses a token that appears bare: in the ``args`` tuple
of a decorator frame, in a crypto helper's ``value``, in a JSON blob copied from the
environment into ``request.META``, in SQL parameters. So the values themselves are kept here:

- *configured* secrets (SECRET_KEY, encryption keys, client secrets, database and broker
  passwords), registered when logging is configured, when the app is ready, and whenever a
  setting changes (tests);
- *runtime* secrets: every token plaintext that ``integrations.store.crypto`` encrypts or decrypts,
  and every token response that reaches the login pipeline or a refresh.

Runtime values are kept in an LRU of ``RUNTIME_CAPACITY`` entries (a busy refresher must not
grow memory without bound); configured values sit in their own, smaller LRU, so token churn
never evicts a client secret. Values shorter than ``MIN_LENGTH`` are ignored: masking every
"abc" or "demo" would shred ordinary text.

Finding them must cost O(len(text)), whatever the number of secrets, and registering one must
not rebuild anything (a refresher registers a new token per refresh, and logs after each). A
regular expression alternation of 10,000 values is neither (Python's ``re`` tries every
branch at every position: ~170 ms per 10 KB; a trie-shaped one takes a second to compile).
Instead, an index of ``GRAM``-character slices (Rabin-Karp style, with aligned sampling):

- the text is cut into consecutive GRAM-character chunks at positions 0, GRAM, 2 x GRAM, ...;
- any occurrence of a secret of length L >= 2 x GRAM - 1 covers exactly one aligned chunk
  inside its last 2 x GRAM - 1 characters, which is one of the GRAM slices of the secret
  starting at offsets L - 2 x GRAM + 1 ... L - GRAM: those slices are indexed;
- a chunk found in the index gives candidate secrets and their start; ``str.startswith``
  confirms each.

Secrets embedded in longer runs (``x=TOKEN&y``, ``--TOKEN--``, ``Bearer%20TOKEN``) are found
like any other, since nothing depends on word boundaries. Slices near the *end* are indexed
because tokens often share a prefix (JWT headers, ``sk_live_``) and rarely a tail.
"""

from __future__ import annotations

import html
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

MIN_LENGTH = 8
GRAM = 4  # MIN_LENGTH must be at least 2 x GRAM - 1
RUNTIME_CAPACITY = 10_000
CONFIGURED_CAPACITY = 1_000
MASK = "[redacted]"
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")  # unchanged by URL-encoding and HTML-escaping

# Setting names (and nested keys) whose string values are secrets. KEY and TOKEN only end a
# name: "token_url" and "KEY_PREFIX" hold none, and masking a URL everywhere helps nobody.
SECRET_SETTING_NAME = re.compile(
    r"(?i)SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|(?:^|_)(?:KEYS?|TOKENS?|FALLBACKS)$"
)
# Settings whose names look secret but hold none (hasher paths, validator names, timeouts).
NOT_SECRET_SETTINGS = frozenset(
    {"PASSWORD_HASHERS", "AUTH_PASSWORD_VALIDATORS", "PASSWORD_RESET_TIMEOUT"}
)


class SecretRegistry:
    """A bounded, thread-safe set of secret values with an O(len(text)) search."""

    def __init__(
        self,
        runtime_capacity: int = RUNTIME_CAPACITY,
        configured_capacity: int = CONFIGURED_CAPACITY,
    ) -> None:
        self._lock = threading.Lock()
        # value -> the forms indexed for it (itself, HTML-escaped, URL-encoded)
        self._runtime: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._configured: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._runtime_capacity = runtime_capacity
        self._configured_capacity = configured_capacity
        # chunk -> {(form, offset of the chunk in the form): number of entries holding it}
        self._index: dict[str, dict[tuple[str, int], int]] = {}

    def __len__(self) -> int:
        return len(self._runtime) + len(self._configured)

    def __contains__(self, value: object) -> bool:
        return value in self._runtime or value in self._configured

    def register(self, value: object, *, configured: bool = False) -> None:
        """Remember `value` (a str of at least MIN_LENGTH characters; anything else is ignored).

        Re-registering a value only marks it as recently used: O(1), nothing rebuilt.
        """
        if not isinstance(value, str) or len(value) < MIN_LENGTH:
            return
        table = self._configured if configured else self._runtime
        capacity = self._configured_capacity if configured else self._runtime_capacity
        with self._lock:
            if value in table:
                table.move_to_end(value)
                return
            forms = _forms(value)
            table[value] = forms
            for form in forms:
                self._add(form)
            if len(table) > capacity:
                _, evicted = table.popitem(last=False)
                for form in evicted:
                    self._remove(form)

    def register_many(self, values: Iterable[object], *, configured: bool = False) -> None:
        for value in values:
            self.register(value, configured=configured)

    def clear(self) -> None:
        with self._lock:
            self._runtime.clear()
            self._configured.clear()
            self._index.clear()

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Return the (start, end) of every occurrence of a known secret, merged and sorted."""
        if not self._index or len(text) < MIN_LENGTH:
            return []
        chunks = [text[start:start + GRAM] for start in range(0, len(text) - GRAM + 1, GRAM)]
        found: list[tuple[int, int]] = []
        with self._lock:
            index = self._index
            if index.keys().isdisjoint(chunks):  # the common case, entirely in C
                return []
            for position, chunk in enumerate(chunks):
                candidates = index.get(chunk)
                if not candidates:
                    continue
                aligned = position * GRAM
                for form, offset in candidates:
                    start = aligned - offset
                    if start >= 0 and text.startswith(form, start):
                        found.append((start, start + len(form)))
        return _merge(found)

    def mask(self, text: str, replacement: str = MASK) -> str:
        """Return `text` with every known secret replaced by `replacement`."""
        spans = self.spans(text)
        if not spans:
            return text
        parts: list[str] = []
        previous = 0
        for start, end in spans:
            parts.append(text[previous:start])
            parts.append(replacement)
            previous = end
        parts.append(text[previous:])
        return "".join(parts)

    def _add(self, form: str) -> None:
        for chunk, holder in _index_keys(form):
            holders = self._index.setdefault(chunk, {})
            holders[holder] = holders.get(holder, 0) + 1

    def _remove(self, form: str) -> None:
        for chunk, holder in _index_keys(form):
            holders = self._index.get(chunk)
            if holders is None:
                continue
            count = holders.get(holder, 0) - 1
            if count > 0:
                holders[holder] = count
            else:
                holders.pop(holder, None)
                if not holders:
                    del self._index[chunk]


def _forms(value: str) -> tuple[str, ...]:
    """The value, plus the shapes it takes in HTML pages and in URL-encoded bodies."""
    if _UNRESERVED.fullmatch(value):  # most tokens: both shapes are the value itself
        return (value,)
    return tuple(sorted({value, html.escape(value), quote(value, safe="")}))


def _index_keys(form: str) -> list[tuple[str, tuple[str, int]]]:
    """(chunk, (form, offset)) for the GRAM slices that aligned sampling is sure to meet."""
    first = max(0, len(form) - 2 * GRAM + 1)
    return [(form[offset:offset + GRAM], (form, offset)) for offset in range(first, first + GRAM)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


# --- The process-wide registry -----------------------------------------------------------------

REGISTRY = SecretRegistry()


def register(value: object) -> None:
    """Remember a runtime secret (a token plaintext) so that redaction masks it everywhere."""
    REGISTRY.register(value)


def register_token_response(response: object, depth: int = 0) -> None:
    """Remember the tokens of a token-endpoint response (a mapping; anything else is ignored),
    also those nested in it (Slack puts the user's tokens under `authed_user`)."""
    if isinstance(response, Mapping) and depth < 4:
        for name in ("access_token", "refresh_token", "id_token"):
            REGISTRY.register(response.get(name))
        for value in response.values():
            if isinstance(value, Mapping):
                register_token_response(value, depth + 1)


def mask(text: str) -> str:
    """Return `text` with every secret this process knows masked (by value only)."""
    return REGISTRY.mask(text)


def configured_secrets(settings: Any) -> Iterator[str]:
    """Yield the secret values found in a settings object.

    Strings under a secret-looking name (SECRET_KEY, CUSTODIAN_ENCRYPTION_KEYS,
    MONZO_CLIENT_SECRET, SOCIAL_AUTH_*_SECRET, DATABASES[...]["PASSWORD"], a provider's
    "client_secret" at any depth of CUSTODIAN_PROVIDERS), and passwords in URLs
    (CELERY_BROKER_URL, DATABASE_URL, ...) wherever they are.
    """
    for name in dir(settings):
        if name.isupper() and name not in NOT_SECRET_SETTINGS:
            try:
                value = getattr(settings, name)
            except Exception:  # noqa: S112  (a setting that cannot be read holds no secret)
                continue
            yield from secrets_in(name, value)


def secrets_in(name: str, value: Any, *, secret: bool = False, depth: int = 0) -> Iterator[str]:
    """Yield the secrets in one (possibly nested) setting value."""
    secret = secret or bool(SECRET_SETTING_NAME.search(name))
    if isinstance(value, str):
        if secret:
            yield value
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                yield password
    elif depth < 8 and isinstance(value, Mapping):
        # A dict's keys speak for its values: LOGGING's "redact_secrets" filter or a
        # "prune-credential-events" beat entry hold no secret, DATABASES' "PASSWORD" does.
        for key, item in value.items():
            yield from secrets_in(str(key), item, depth=depth + 1)
    elif depth < 8 and isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from secrets_in(name, item, secret=secret, depth=depth + 1)


def register_settings(settings: Any) -> None:
    """Remember every secret the settings hold (idempotent, cheap: a few hundred settings)."""
    REGISTRY.register_many(configured_secrets(settings), configured=True)


def register_setting(name: str, value: Any) -> None:
    """Remember the secrets of one setting (Django's setting_changed, i.e. tests)."""
    if name not in NOT_SECRET_SETTINGS:
        REGISTRY.register_many(secrets_in(name, value), configured=True)
