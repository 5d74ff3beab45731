"""Django settings of the demo provider: its own process, database and cookies.

Never mixed with the main site's settings (site_config): the provider is a separate
server that the site talks to over HTTP, exactly like a real third-party provider.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import global_settings

REPO_ROOT = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "DEMO_PROVIDER_SECRET_KEY", "demo-provider-insecure-fixed-key-for-local-use-only"
)
# Off by default so error responses look like a real server's, never a debug page.
DEBUG = os.environ.get("DEMO_PROVIDER_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

# The /_control/ endpoints are only mounted when the test-suite asks for them.
DEMO_PROVIDER_TEST_CONTROLS = os.environ.get("DEMO_PROVIDER_TEST_CONTROLS") == "1"

# Published demo credentials (the login page shows the password).
DEMO_CLIENT_ID = os.environ.get("DEMO_CLIENT_ID") or "custodian-demo"
DEMO_CLIENT_SECRET = os.environ.get("DEMO_CLIENT_SECRET") or "custodian-demo-secret"
MONZO_CLIENT_ID = "custodian-monzo"
MONZO_CLIENT_SECRET = "custodian-monzo-secret"
# The OpenID Connect client: a site logs in with a stock OIDC backend, configured by issuer.
OIDC_CLIENT_ID = "custodian-oidc"
OIDC_CLIENT_SECRET = "custodian-oidc-secret"
DEMO_USERS = ("alice", "bob", "carol")
DEMO_PASSWORD = "demo"
# Django's default hashing costs a third of a second per password, on purpose. The test-suite
# logs in hundreds of times with the published password above, so it asks for MD5 (never
# anything else does: `make run` keeps the default). Hashes made before still verify.
DEMO_PROVIDER_FAST_PASSWORD_HASHING = os.environ.get("DEMO_PROVIDER_FAST_PASSWORD_HASHING") == "1"
if DEMO_PROVIDER_FAST_PASSWORD_HASHING:
    PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *global_settings.PASSWORD_HASHERS,
    ]
# Clients whose API access needs the user's extra approval (Monzo's in-app
# Strong Customer Authentication) before /accounts answers.
SCA_CLIENT_IDS = (MONZO_CLIENT_ID,)
DEFAULT_REDIRECT_URIS = (
    "http://127.0.0.1:8000/complete/demo/",
    "http://localhost:8000/complete/demo/",
    "http://127.0.0.1:8000/complete/monzo/",
    "http://localhost:8000/complete/monzo/",
    "http://testserver/complete/demo/",
    "http://testserver/complete/monzo/",
    # Connecting an account from the site's admin (integrations/admin/).
    "http://127.0.0.1:8000/admin/social_django/usersocialauth/connect/complete/demo/",
    "http://localhost:8000/admin/social_django/usersocialauth/connect/complete/demo/",
    "http://127.0.0.1:8000/admin/social_django/usersocialauth/connect/complete/monzo/",
    "http://localhost:8000/admin/social_django/usersocialauth/connect/complete/monzo/",
)
# The OIDC client's: `oidc` is social-core's generic OpenID Connect backend, `idp` the name
# the tests give a provider declared by its issuer. Same hosts as the clients above.
OIDC_REDIRECT_URIS = tuple(
    f"{origin}/complete/{backend}/"
    for backend in ("oidc", "idp")
    for origin in ("http://127.0.0.1:8000", "http://localhost:8000", "http://testserver")
) + tuple(
    f"{origin}/admin/social_django/usersocialauth/connect/complete/{backend}/"
    for backend in ("oidc", "idp")
    for origin in ("http://127.0.0.1:8000", "http://localhost:8000")
)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "demo_provider",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_provider.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_PROVIDER_DB") or str(REPO_ROOT / ".demo_provider.sqlite3"),
        # Concurrent token calls queue for the write lock instead of failing
        # with "database is locked" half-way through a transaction.
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/approve/"

# Browsers share cookies across ports of one host: the site on :8000 and the
# provider on :8001 must not overwrite each other's session or CSRF cookie.
SESSION_COOKIE_NAME = "demo_provider_sessionid"
CSRF_COOKIE_NAME = "demo_provider_csrftoken"


def pkce_required(client_id: str) -> bool:
    """PKCE is mandatory except for the Monzo-shaped client (Monzo clients send none)."""
    return client_id != MONZO_CLIENT_ID


def _fresh_signing_key() -> str:
    """A new RSA key (PEM) for signing ID tokens, made once per process at start-up.

    Made rather than committed: no private key sits in the repository to be copied into a
    real deployment or to trip secret scanners, and every restart is a key rotation, which
    a relying party must follow through the JWKS anyway (the new key has a new ``kid``).
    ID tokens signed before a restart no longer verify, as after any key rotation; a new
    login makes new ones. It costs about a tenth of a second per start.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# Named explicitly so migrations can depend on it (DOT's models are swappable).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"

OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "demo_provider.validator.DemoOAuth2Validator",
    "PKCE_REQUIRED": pkce_required,
    # Only S256 challenges are accepted (RFC 9700 section 2.1.1).
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    # Behave like a strict RFC 9700 server: every refresh rotates, and replaying a
    # rotated refresh token revokes the whole family, with no grace period.
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("DEMO_PROVIDER_TOKEN_LIFETIME") or 3600),
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    # OpenID Connect: ID tokens signed RS256 with a per-process key, published as a JWKS.
    # No OIDC_ISS_ENDPOINT: the issuer is the URL the discovery document is served from.
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": _fresh_signing_key(),
    # Only what the clients can use: they are registered for the authorization-code grant.
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "SCOPES": {
        "read": "Reading scope",
        "write": "Writing scope",
        "openid": "Know who you are",
        "profile": "See your name and username",
        "email": "See your e-mail address",
    },
    # A client that asks for no scope gets what it always got, never an ID token.
    "DEFAULT_SCOPES": ["read", "write"],
    "SCOPES_BACKEND_CLASS": "demo_provider.oidc.DemoScopes",
}

# Quiet: request lines are not logged at all (see __main__), and only server
# errors reach stderr. oauthlib's debug messages would contain tokens.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
        "oauthlib": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "oauth2_provider": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
