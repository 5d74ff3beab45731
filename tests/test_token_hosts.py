"""The token goes to the provider's hosts and nowhere else, however the URL is dressed up.

Two real HTTP servers on loopback: the provider's API (the demo provider's API base points at
it) and a capture server on another port that records every Authorization header it is sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from django.contrib.messages import get_messages

from integrations import ForeignHostRefused, get_session
from integrations.store.credentials import read_credentials

pytestmark = pytest.mark.django_db


class CaptureServer:
    """Answers /redirect?to=URL with a 302, /unauthorized with a 401, /deep/... with JSON
    nested 200,000 levels deep, anything else with 200, and records (path, Authorization
    header) of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                capture.seen.append((self.path, self.headers.get("Authorization", "")))
                parts = urlsplit(self.path)
                if parts.path.endswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", parse_qs(parts.query)["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 401 if parts.path.endswith("/unauthorized") else 200
                body = json.dumps({"path": self.path}).encode()
                if parts.path.startswith("/deep/"):
                    body = b"[" * 200_000 + b"]" * 200_000
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.netloc = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{self.netloc}"
        # A short poll: stop() waits for the loop to notice, up to one poll (0.5 s by default).
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def tokens_seen(self) -> list[str]:
        return [auth for _, auth in self.seen if auth]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[CaptureServer]:
    server = CaptureServer()
    yield server
    server.stop()


@pytest.fixture
def evil() -> Iterator[CaptureServer]:
    server = CaptureServer()
    yield server
    server.stop()


@pytest.fixture
def session_on(connected, settings, api):
    """A get_session for alice's demo account whose API base is the `api` server."""
    user, association = connected()
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = api.base_url + "/v1"
    token = read_credentials(association.extra_data).access_token
    return get_session(user, "demo"), token


def refresh_calls(provider) -> int:
    return provider.stats()["token_calls"].get("refresh_token", 0)


def hostile_urls(evil: str, api: str) -> list[str]:
    """URLs that must never carry the token to `evil` (host:port); `api` is the real API."""
    prefixed = [f"{chr(code)}//{evil}/x" for code in range(0x00, 0x21)]  # every C0 and space
    return [
        *prefixed,
        f"\u00a0//{evil}/x",  # Unicode whitespace
        f"\u3000//{evil}/x",
        f"//{evil}/x",  # scheme-relative
        f"///{evil}/x",
        f"\\\\{evil}/x",  # backslashes
        f"/\\{evil}/x",
        f"http:\\\\{evil}/x",
        f"http:/\\{evil}/x",
        f"http://{api}\\@{evil}/x",
        f"http://api@{evil}/x",  # userinfo
        f"http://{api}@{evil}/x",
        f"http://{api}:pw@{evil}/x",
        f"http://{evil}/x",  # another port on the same host
        f"https://{evil}/x",
        f"HTTP://{evil}/x",  # upper-case scheme
        f"Http://{evil}/x",
        f"HTTP://{api}/x",
        f"http://localhost.:{evil.rsplit(':', 1)[1]}/x",  # trailing dot
        f"http://127.0.0.1.:{evil.rsplit(':', 1)[1]}/x",
        f"http://{evil.replace('.', '%2e')}/x",  # percent-encoded host
        f"http:{evil}/x",
        f"ftp://{evil}/x",
        f"localhost:{evil.rsplit(':', 1)[1]}/x",
        f"http://[{evil.rsplit(':', 1)[0]}]:{evil.rsplit(':', 1)[1]}/x",  # malformed IPv6
        f"http://\uff11\uff12\uff17.0.0.1:{evil.rsplit(':', 1)[1]}/x",  # full-width digits
        f"http://127\u30020\u30020\u30021:{evil.rsplit(':', 1)[1]}/x",  # ideographic dots
    ]


def test_hostile_urls_are_refused_and_the_token_never_arrives(session_on, api, evil):
    session, token = session_on
    refused = []
    for url in hostile_urls(evil.netloc, api.netloc):
        try:
            session.get(url)
        except ValueError as error:  # ForeignHostRefused is one; older code raised plain ones
            refused.append(error)
            assert token not in str(error)
            assert "/x" not in str(error), "the message names hosts, never the URL"
    assert evil.tokens_seen() == []
    assert evil.seen == [], "nothing at all reaches the other port"
    assert api.seen == [], "nor does anything ambiguous reach the API"
    assert len(refused) == len(hostile_urls(evil.netloc, api.netloc))
    assert all(isinstance(error, ForeignHostRefused) for error in refused)


def test_foreign_host_refused_is_still_a_value_error(session_on, evil):
    session, _ = session_on
    with pytest.raises(ValueError, match="Refusing to send the demo token"):
        session.get(f"{evil.base_url}/x")


@pytest.mark.parametrize("path", ["/accounts", "accounts", "../v1/accounts", "/a%20b?c=d"])
def test_paths_still_resolve_under_the_api_base(session_on, api, path):
    session, token = session_on
    assert session.get(path).status_code == 200
    assert api.seen[-1][1] == f"Bearer {token}"
    assert api.seen[-1][0].startswith("/v1/")


def test_absolute_urls_on_the_api_host_are_accepted(session_on, api):
    session, token = session_on
    assert session.get(f"{api.base_url}/other").status_code == 200
    assert api.seen == [("/other", f"Bearer {token}")]


def test_declared_api_hosts_receive_the_token(connected, settings, api, evil):
    user, association = connected()
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = api.base_url
    settings.CUSTODIAN_PROVIDERS["demo"]["api_hosts"] = [evil.base_url]
    token = read_credentials(association.extra_data).access_token

    assert get_session(user, "demo").get(f"{evil.base_url}/files").status_code == 200
    assert evil.seen == [("/files", f"Bearer {token}")]


@pytest.mark.parametrize(
    "hosts", [["https://files.example.com/path"], ["files.example.com"], "https://x", [5]]
)
def test_api_hosts_must_be_origins(settings, hosts):
    from django.core.exceptions import ImproperlyConfigured

    from backends.generic import ProviderDeclaration

    settings.CUSTODIAN_PROVIDERS["demo"]["api_hosts"] = hosts
    with pytest.raises(ImproperlyConfigured, match="api_hosts"):
        ProviderDeclaration.from_settings("demo")


def test_redirect_to_another_host_drops_the_token_and_its_401_never_refreshes(
    session_on, api, evil, provider
):
    session, _token = session_on
    before = refresh_calls(provider)

    response = session.get(f"/redirect?to={evil.base_url}/unauthorized")

    assert response.status_code == 401
    assert response.url == f"{evil.base_url}/unauthorized"
    assert evil.tokens_seen() == []
    assert refresh_calls(provider) == before, "a foreign 401 says nothing about our token"
    assert len(api.seen) == 1, "and nothing was retried"


def test_a_401_after_a_round_trip_through_another_host_never_refreshes(
    session_on, api, evil, provider
):
    session, _ = session_on
    before = refresh_calls(provider)
    back_to_api = quote(f"{api.base_url}/v1/unauthorized", safe="")
    bounce = quote(f"{evil.base_url}/redirect?to={back_to_api}", safe="")

    response = session.get(f"/redirect?to={bounce}")

    assert response.status_code == 401
    assert response.url == f"{api.base_url}/v1/unauthorized"
    assert evil.tokens_seen() == []
    assert refresh_calls(provider) == before, "a redirect must not be able to force refreshes"


def test_a_request_re_sent_elsewhere_loses_the_token(session_on, api, evil):
    session, _ = session_on
    prepared = session.get("/x").request.copy()
    prepared.url = f"{evil.base_url}/resend"

    session.send(prepared)

    assert evil.seen == [("/resend", "")]


def test_headers_may_be_passed_positionally(session_on, api):
    session, token = session_on
    response = session.request("GET", "/x", None, None, {"X-Extra": "yes"})
    assert response.status_code == 200
    assert api.seen[-1] == ("/v1/x", f"Bearer {token}")
    with pytest.raises(TypeError, match="multiple values for headers"):
        session.request("GET", "/x", None, None, {"X-Extra": "yes"}, headers={})


def test_a_netrc_entry_does_not_replace_the_token(session_on, api, tmp_path, monkeypatch):
    session, token = session_on
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret-from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    session.get("/x")

    assert api.seen[-1] == ("/v1/x", f"Bearer {token}")


def test_redirect_to_another_scheme_on_the_api_host_drops_the_token(session_on, api):
    session, token = session_on
    # http -> https on the same host and default ports keeps the header in plain requests.
    redirect_target = api.base_url.replace("http://", "https://") + "/x"
    with pytest.raises(requests.RequestException):
        session.get(f"/redirect?to={redirect_target}")
    assert [auth for _, auth in api.seen] == [f"Bearer {token}"]


def test_redirect_within_the_api_keeps_the_token(session_on, api):
    session, token = session_on
    response = session.get(f"/redirect?to={api.base_url}/v1/after")
    assert response.status_code == 200
    assert api.seen[-1] == ("/v1/after", f"Bearer {token}")


# --- Try it while the provider is down ----------------------------------------------------


@pytest.mark.parametrize("debug", [True, False])
def test_try_it_while_the_api_is_down_is_a_friendly_message(connected, client, settings, debug):
    _, association = connected()
    settings.DEBUG = debug
    dead = CaptureServer()
    dead.stop()  # a port nobody listens on any more
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = dead.base_url

    response = client.post(f"/connections/{association.pk}/try/")

    assert response.status_code == 302
    flashed = " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert "not answering right now" in flashed


def test_try_it_shows_an_answer_nested_too_deep_to_parse(connected, client, settings, api):
    """A JSON parser recursing 200,000 levels deep must not become a 500."""
    _, association = connected()
    # Try it calls /ping/whoami under the API base: /deep/ping/whoami answers the nesting.
    settings.CUSTODIAN_PROVIDERS["demo"]["api_base_url"] = f"{api.base_url}/deep"

    response = client.post(f"/connections/{association.pk}/try/")

    assert api.seen[-1][0] == "/deep/ping/whoami"
    assert response.status_code == 200
    assert "[[[[" in response.content.decode()
