"""Harness for the loopback demo provider: start it as its own process, steer it
through its control plane, and click through its login and consent pages.

Plain Python (no pytest fixtures) so any fixture, script or test can use it. All
HTTP goes to 127.0.0.1 only, and every request has a bounded timeout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from tests.loopback_process import LoopbackProcess

LISTENING_PREFIX = "demo provider listening on "
REQUEST_TIMEOUT = 15.0
MAX_REDIRECTS = 10


class ProviderError(RuntimeError):
    """The provider failed to start, or answered the harness unexpectedly."""


class _Forms(HTMLParser):
    """Collects each form's action, its inputs' names and values, and its element id."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "id": attributes.get("id", ""),
                    "action": attributes.get("action", ""),
                    "fields": {},
                }
            )
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")


def _forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class LoopbackProvider(LoopbackProcess):
    """One demo provider process on a free loopback port, with its test controls on.

    ``env`` is applied last, so it can override anything, including
    ``DEMO_PROVIDER_TEST_CONTROLS`` (to check the controls are then absent) and
    ``DEMO_PROVIDER_FAST_PASSWORD_HASHING`` (on here: tests log in very often).
    """

    name = "demo provider"
    listening_prefix = LISTENING_PREFIX
    error = ProviderError

    def __init__(
        self,
        *,
        db_path: str | os.PathLike[str],
        token_lifetime: int = 3600,
        redirect_uris: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.token_lifetime = token_lifetime
        self.redirect_uris = tuple(redirect_uris)
        self.env = dict(env or {})

    def start(self) -> LoopbackProvider:
        """Spawn the provider and wait for its listening line (raises with its stderr)."""
        command = [
            sys.executable,
            "-m",
            "demo_provider",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(self.db_path),
        ]
        for uri in self.redirect_uris:
            command += ["--redirect-uri", uri]
        self._spawn(
            command,
            {
                **os.environ,
                "DEMO_PROVIDER_TEST_CONTROLS": "1",
                # Logins with the demo password by the hundred: MD5, not the slow default.
                "DEMO_PROVIDER_FAST_PASSWORD_HASHING": "1",
                "DEMO_PROVIDER_TOKEN_LIFETIME": str(self.token_lifetime),
                **self.env,
            },
        )
        return self

    # -- control plane -----------------------------------------------------------

    def _control(self, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}/_control/{name}"
        if payload is None:
            response = requests.get(url, timeout=REQUEST_TIMEOUT)
        else:
            response = requests.post(url, json=payload, timeout=REQUEST_TIMEOUT)
        if response.status_code != 200:
            raise ProviderError(
                f"/_control/{name} answered {response.status_code}: {response.text}"
            )
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self._control("stats")

    def reset(self) -> None:
        self._control("reset", {})

    def fault(self, mode: str, count: int | None = 1, grant_type: str = "refresh_token") -> None:
        self._control("fault", {"mode": mode, "count": count, "grant_type": grant_type})

    def latency(self, token_ms: int) -> None:
        self._control("latency", {"token_ms": token_ms})

    def add_redirect_uri(self, client_id: str, uri: str) -> None:
        self._control("redirect_uri", {"client_id": client_id, "uri": uri})

    def expire_access(self, username: str) -> None:
        self._control("expire_access", {"username": username})

    def revoke_grant(self, username: str) -> None:
        self._control("revoke_grant", {"username": username})

    def approve(self, username: str, client_id: str = "custodian-monzo") -> None:
        self._control("approve", {"username": username, "client_id": client_id})

    def withdraw_approval(
        self,
        username: str,
        client_id: str = "custodian-monzo",
        code: str = "forbidden.insufficient_permissions",
    ) -> None:
        """Make the provider ask for in-app approval again: `/accounts` answers 403 `code`."""
        self._control(
            "withdraw_approval", {"username": username, "client_id": client_id, "code": code}
        )

    def bulk_grant(
        self, count: int, *, prefix: str = "bulk", client_id: str = "custodian-demo"
    ) -> list[dict[str, Any]]:
        """Mint `count` users' grants at once (users ``{prefix}0``...); return their token
        responses, each with ``username`` and ``user_id``. Far faster than `authorize`."""
        return self._control(
            "bulk_grant", {"count": count, "prefix": prefix, "client_id": client_id}
        )["grants"]

    # -- the browser part ----------------------------------------------------------

    def authorize(
        self,
        authorization_url: str,
        *,
        username: str = "alice",
        password: str = "demo",
        allow: bool = True,
    ) -> str:
        """Log in and answer the consent page like a user would; return where the
        provider then sends the browser (the client's redirect_uri with ``code`` and
        ``state``, or with ``error``), without following it."""
        if not authorization_url.startswith(f"{self.base_url}/"):
            raise ValueError(f"not this provider's URL: {authorization_url}")
        with requests.Session() as browser:
            page, left = self._browse(browser, "GET", authorization_url)
            if left:
                return left
            login = self._form(page, lambda form: "password" in form["fields"], "login")
            page, left = self._browse(
                browser,
                "POST",
                urljoin(page.url, login["action"]),
                {
                    **login["fields"],
                    "username": username,
                    "password": password,
                },
            )
            if left:
                return left
            if any("password" in form["fields"] for form in _forms(page.text)):
                raise ProviderError(f"login as {username!r} failed")
            consent = self._form(page, lambda form: form["id"] == "authorizationForm", "consent")
            fields = {
                name: value
                for name, value in consent["fields"].items()
                if name not in ("allow", "deny")
            }
            if allow:
                fields["allow"] = "Allow"
            page, left = self._browse(browser, "POST", urljoin(page.url, consent["action"]), fields)
            if left:
                return left
            raise ProviderError(f"consent did not redirect ({page.status_code}): {page.text[:500]}")

    def _browse(
        self,
        browser: requests.Session,
        method: str,
        url: str,
        data: dict[str, str] | None = None,
    ) -> tuple[requests.Response, str]:
        """Follow redirects while they stay on the provider; return the last page and
        the first redirect target outside it ("" if none)."""
        response = browser.request(
            method, url, data=data, allow_redirects=False, timeout=REQUEST_TIMEOUT
        )
        for _ in range(MAX_REDIRECTS):
            if not response.is_redirect:
                return response, ""
            target = urljoin(response.url, response.headers["Location"])
            if urlsplit(target)[:2] != urlsplit(self.base_url)[:2]:
                return response, target
            response = browser.get(target, allow_redirects=False, timeout=REQUEST_TIMEOUT)
        raise ProviderError(f"too many redirects from {url}")

    @staticmethod
    def _form(
        page: requests.Response, matches: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        for form in _forms(page.text):
            if matches(form):
                form["action"] = form["action"] or page.url
                return form
        raise ProviderError(f"no {what} form on {page.url} ({page.status_code}): {page.text[:500]}")
