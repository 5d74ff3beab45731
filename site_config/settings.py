"""Django settings for Custodian.

Every value that differs between machines comes from the environment (or a `.env` file at the
repository root, read by `site_config.env`). The defaults fail closed: DEBUG is off unless the
environment turns it on (`make run`, `make test` and `.env.example` do), and with DEBUG off the
site refuses to start without SECRET_KEY and CUSTODIAN_ENCRYPTION_KEYS. With DEBUG on: SQLite,
a development key, the offline demo provider declared.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from site_config.env import (
    BASE_DIR,
    env_bool,
    env_int,
    env_json,
    env_list,
    env_str,
    social_auth_settings,
)
from site_config.keys import check_fernet_keys, derive_development_key
from site_config.log_config import logging_config
from site_config.providers import demo_provider_declaration

# Off unless asked for: a forgotten variable in production must not mean debug pages and a
# development key. manage.py, wsgi.py and asgi.py turn the errors below into one line.
DEBUG = env_bool("DEBUG", False)
_DEV_SECRET_KEY = "dev-insecure-custodian-secret-key-change-me-in-production"  # noqa: S105 (DEBUG only)
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example)")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # django.contrib.admin, with the index arranged around connected accounts.
    "integrations.apps.CustodianAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "social_django",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Content-Security-Policy on every page (not on static files, which WhiteNoise answers).
    "integrations.web.headers.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Cache-Control: no-store for logged-in users, the admin and the login flow; outside the
    # error middleware below, so its pages get it too (integrations/web/headers.py).
    "integrations.web.headers.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns every social-auth failure at /login/ and /complete/ into a friendly page.
    "integrations.web.middleware.AuthErrorMiddleware",
]

ROOT_URLCONF = "site_config.urls"
WSGI_APPLICATION = "site_config.wsgi.application"
ASGI_APPLICATION = "site_config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "social_django.context_processors.backends",
                "social_django.context_processors.login_redirect",
                "integrations.web.context_processors.providers",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite by default; DATABASE_URL (postgres://...) selects PostgreSQL. On SQLite every
# transaction takes the write lock at BEGIN ("IMMEDIATE"), which serializes token refreshes
# the way SELECT ... FOR UPDATE does on PostgreSQL.
_SQLITE_PATH = env_str("SQLITE_PATH", str(BASE_DIR / "custodian.sqlite3"))
# A refresh holds SQLite's write lock while it waits for the provider (up to
# CUSTODIAN_REFRESH_TIMEOUT): other writers wait longer than that rather than fail.
_SQLITE_LOCK_WAIT = float(env_str("CUSTODIAN_REFRESH_TIMEOUT", "60")) + 30
_SQLITE_TEST_DEFAULT = str(Path(tempfile.gettempdir()) / f"custodian-test-{os.getpid()}.sqlite3")
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"transaction_mode": "IMMEDIATE", "timeout": _SQLITE_LOCK_WAIT}
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _SQLITE_PATH,
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": _SQLITE_LOCK_WAIT},
            # A file, not the in-memory default: threads in tests need real connections.
            # One per test process, so two test runs on one machine never share a database.
            "TEST": {"NAME": env_str("SQLITE_TEST_PATH", _SQLITE_TEST_DEFAULT)},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "integrations.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Production hardening (DEBUG=false) --------------------------------------------------------
# `manage.py check --deploy` reports nothing with these and the production variables set
# (see README, "Production").
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("BEHIND_TLS_PROXY", False):
        # Only behind a proxy that sets this header itself; otherwise clients could forge it.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# --- Content-Security-Policy (django-csp; integrations/web/headers.py) ---------------------------
# Only the site's own static files: no inline script or style, no other origin, no plugins,
# no <base> tricks, no framing. The pages and the admin need nothing else; keep it that way by
# putting scripts and styles in static/. form-action also gets, per response, the origin of
# each configured provider's authorization page: login forms are answered with a redirect
# there, and browsers check form-action on that redirect (integrations/web/headers.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
# Extra origins login forms may be redirected to (comma-separated), for a provider whose
# authorization page sends the browser on to another origin.
CUSTODIAN_CSP_FORM_ACTION = env_list("CUSTODIAN_CSP_FORM_ACTION")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "connections"
LOGOUT_REDIRECT_URL = "home"

# --- Providers -------------------------------------------------------------------------------
# Monzo (backends/monzo.py). Register a confidential client at Monzo's developer portal with
# the redirect URI {site}/complete/monzo/. The two URLs exist to point it at a sandbox or a
# test server.
MONZO_CLIENT_ID = env_str("MONZO_CLIENT_ID")
MONZO_CLIENT_SECRET = env_str("MONZO_CLIENT_SECRET")
MONZO_AUTH_URL = env_str("MONZO_AUTH_URL", "https://auth.monzo.com/")
MONZO_API_URL = env_str("MONZO_API_URL", "https://api.monzo.com")

# The offline demo provider started by `make run` (demo_provider/, a real OAuth 2.0 server).
DEMO_PROVIDER_URL = env_str("DEMO_PROVIDER_URL", "http://127.0.0.1:8001").rstrip("/")
_DEMO_PROVIDER = demo_provider_declaration(
    DEMO_PROVIDER_URL,
    client_id=env_str("DEMO_CLIENT_ID", "custodian-demo"),
    client_secret=env_str("DEMO_CLIENT_SECRET", "custodian-demo-secret"),
)

# Providers declared here become working backends without new code (backends/generic.py,
# docs/adding-a-provider.md). CUSTODIAN_PROVIDERS in the environment (JSON) adds more.
CUSTODIAN_PROVIDERS: dict[str, dict] = {}
if env_bool("CUSTODIAN_DEMO_PROVIDER", DEBUG):
    CUSTODIAN_PROVIDERS["demo"] = _DEMO_PROVIDER
_DECLARED = env_json("CUSTODIAN_PROVIDERS", {})
if not isinstance(_DECLARED, dict):
    raise ImproperlyConfigured("CUSTODIAN_PROVIDERS must be a JSON object: {name: settings}")
CUSTODIAN_PROVIDERS.update(_DECLARED)

# --- Encryption of tokens at rest (integrations/store/crypto.py) ---------------------------------
# Comma-separated Fernet keys: the first encrypts, all decrypt (rotate_encryption_keys).
CUSTODIAN_ENCRYPTION_KEYS = env_list("CUSTODIAN_ENCRYPTION_KEYS")
check_fernet_keys(CUSTODIAN_ENCRYPTION_KEYS)
# True when the key was derived from SECRET_KEY (development only; a system check warns).
CUSTODIAN_ENCRYPTION_KEY_DERIVED = not CUSTODIAN_ENCRYPTION_KEYS
if CUSTODIAN_ENCRYPTION_KEY_DERIVED:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CUSTODIAN_ENCRYPTION_KEYS must be set when DEBUG is off (see .env.example)"
        )
    CUSTODIAN_ENCRYPTION_KEYS = [derive_development_key(SECRET_KEY)]

# --- Sessions and refresh (integrations/) ----------------------------------------------------
CUSTODIAN_REFRESH_LEEWAY = env_int("CUSTODIAN_REFRESH_LEEWAY", 60)  # seconds before expiry
CUSTODIAN_HTTP_TIMEOUT = float(env_str("CUSTODIAN_HTTP_TIMEOUT", "10"))  # seconds per API request
# Seconds a token call (login exchange, refresh, revocation) may take. Long on purpose: a
# refresh abandoned after the provider rotated loses the grant (integrations/psa/strategy.py).
CUSTODIAN_REFRESH_TIMEOUT = float(env_str("CUSTODIAN_REFRESH_TIMEOUT", "60"))

# --- Background refresh (manage.py refresh_tokens, integrations/background/tasks.py) ---------
# Refresh tokens expiring within this many seconds (the command's --within default too).
CUSTODIAN_REFRESH_WITHIN = env_int("CUSTODIAN_REFRESH_WITHIN", 600)
# {provider: refreshes per second}, per process (the command, or each Celery worker process).
CUSTODIAN_REFRESH_RATE_LIMITS: dict[str, float] = env_json("CUSTODIAN_REFRESH_RATE_LIMITS", {})
# {provider: seconds}: refresh associations idle that long, so their grants stay alive.
CUSTODIAN_KEEPALIVE: dict[str, int] = env_json("CUSTODIAN_KEEPALIVE", {})
for _name, _mapping in (
    ("CUSTODIAN_REFRESH_RATE_LIMITS", CUSTODIAN_REFRESH_RATE_LIMITS),
    ("CUSTODIAN_KEEPALIVE", CUSTODIAN_KEEPALIVE),
):
    if not isinstance(_mapping, dict) or not all(
        isinstance(value, (int, float)) and value > 0 for value in _mapping.values()
    ):
        raise ImproperlyConfigured(f"{_name} must be a JSON object of positive numbers")
# Transient failures (RefreshFailed) are tried this many times in all, waiting about
# BACKOFF, 2 x BACKOFF, 4 x ... (capped at BACKOFF_MAX, with jitter) between tries.
CUSTODIAN_REFRESH_ATTEMPTS = env_int("CUSTODIAN_REFRESH_ATTEMPTS", 3)
CUSTODIAN_REFRESH_BACKOFF = float(env_str("CUSTODIAN_REFRESH_BACKOFF", "2"))
CUSTODIAN_REFRESH_BACKOFF_MAX = float(env_str("CUSTODIAN_REFRESH_BACKOFF_MAX", "60"))
CUSTODIAN_REFRESH_BATCH_SIZE = env_int("CUSTODIAN_REFRESH_BATCH_SIZE", 100)  # ids per Celery task
# Refreshes in flight at once per Celery worker process (threads; fewer while a provider is
# slow or refusing).
CUSTODIAN_REFRESH_CONCURRENCY = env_int("CUSTODIAN_REFRESH_CONCURRENCY", 8)
CUSTODIAN_REFRESH_INTERVAL = env_int("CUSTODIAN_REFRESH_INTERVAL", 300)  # seconds between beats

# --- Celery (site_config/celery.py): many workers on many hosts, one beat ----------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "custodian")
# A batch whose worker dies is delivered again; single flight makes the repeat harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "refresh-due-tokens": {
        "task": "integrations.tasks.refresh_due_tokens",
        "schedule": float(CUSTODIAN_REFRESH_INTERVAL),
        # A beat nobody picked up before the next one is dropped, not piled up.
        "options": {"expires": float(CUSTODIAN_REFRESH_INTERVAL)},
    },
    # Keeps the credential history within CUSTODIAN_EVENT_RETENTION_DAYS.
    "prune-credential-events": {
        "task": "integrations.tasks.prune_credential_events",
        "schedule": 86_400.0,
    },
}

# --- Admin (integrations/admin/) -----------------------------------------------------------
# A token expiring within this many seconds shows as "expiring soon" in the admin (well under
# common token lifetimes of an hour, or a fresh token would already be "expiring soon").
CUSTODIAN_EXPIRING_SOON = env_int("CUSTODIAN_EXPIRING_SOON", 600)
# Credential history older than this is deleted by `manage.py prune_credential_events`.
CUSTODIAN_EVENT_RETENTION_DAYS = env_int("CUSTODIAN_EVENT_RETENTION_DAYS", 365)

# --- Python Social Auth ----------------------------------------------------------------------
# CUSTODIAN_BACKENDS (comma-separated dotted paths) adds Python Social Auth's own backends,
# configured the way PSA documents: SOCIAL_AUTH_<NAME>_KEY, _SECRET, ... (see below).
CUSTODIAN_BACKENDS = env_list("CUSTODIAN_BACKENDS")
AUTHENTICATION_BACKENDS = [
    "backends.monzo.MonzoOAuth2",
    *(f"backends.declared.{name}" for name in CUSTODIAN_PROVIDERS),
    *CUSTODIAN_BACKENDS,
    "django.contrib.auth.backends.ModelBackend",
]
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_JSONFIELD_ENABLED = True
# Render our own error page instead of re-raising, also with DEBUG on: no debug page for users.
SOCIAL_AUTH_RAISE_EXCEPTIONS = False
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/connections/"
SOCIAL_AUTH_NEW_ASSOCIATION_REDIRECT_URL = "/connections/"
SOCIAL_AUTH_DISCONNECT_REDIRECT_URL = "/connections/"
# Runs the pipeline in one transaction; token calls use CUSTODIAN_REFRESH_TIMEOUT.
SOCIAL_AUTH_STRATEGY = "integrations.psa.strategy.CustodianStrategy"
SOCIAL_AUTH_REDIRECT_IS_HTTPS = env_bool("SOCIAL_AUTH_REDIRECT_IS_HTTPS", not DEBUG)

SOCIAL_AUTH_PIPELINE = (
    # Gather the provider's user details in one shape.
    "social_core.pipeline.social_auth.social_details",
    # Fill in missing name parts from what the provider sent.
    "social_core.pipeline.social_auth.social_names",
    # Read the provider's account id (Monzo: user_id).
    "social_core.pipeline.social_auth.social_uid",
    # Apply allow-lists, if any are configured.
    "social_core.pipeline.social_auth.auth_allowed",
    # Find an existing association; refuse one that belongs to another user (no takeover).
    "social_core.pipeline.social_auth.social_user",
    # Refuse a login to a deactivated user before anything is stored.
    "integrations.psa.pipeline.refuse_inactive_user",
    # Nobody logged in and the provider account linked to no one: stop and ask whether to
    # create a new user or link it to an existing one (the person logs in to it first).
    "integrations.psa.account_choice.choose_account",
    # Pick a free, readable username for a new user (alice, alice2, ...).
    "integrations.psa.usernames.get_username",
    # Create the user when nobody is logged in and the account is new. No associate_by_email:
    # an unverified e-mail address must never hand over an existing account.
    "social_core.pipeline.user.create_user",
    # Remember which provider created the user.
    "integrations.psa.pipeline.remember_signup_provider",
    # Link the provider account to the user (the logged-in one when linking).
    "social_core.pipeline.social_auth.associate_user",
    # Store the credentials in the normalized, encrypted shape.
    "integrations.psa.pipeline.store_credentials",
    # Note whether the provider's app still has to approve access (Monzo), name the account.
    "integrations.psa.pipeline.check_approval",
    # Update the user's name and e-mail from the provider.
    "social_core.pipeline.user.user_details",
)

# How long the choice between a new account and an existing one waits (seconds), and how
# many wrong passwords it accepts before it ends (integrations/psa/account_choice.py).
CUSTODIAN_ACCOUNT_CHOICE_TTL = env_int("CUSTODIAN_ACCOUNT_CHOICE_TTL", 600)
CUSTODIAN_ACCOUNT_CHOICE_ATTEMPTS = env_int("CUSTODIAN_ACCOUNT_CHOICE_ATTEMPTS", 5)

SOCIAL_AUTH_DISCONNECT_PIPELINE = (
    # Refuse to remove the last way a user can log in.
    "social_core.pipeline.disconnect.allowed_to_disconnect",
    # Collect the associations to remove (only the logged-in user's).
    "social_core.pipeline.disconnect.get_entries",
    # Revoke at the provider when it can (never blocking on it), record it, remove them.
    "integrations.psa.pipeline.disconnect",
)

# Every SOCIAL_AUTH_* environment variable becomes the setting of the same name (JSON objects,
# arrays and booleans parsed), so any stock backend is configured without editing this file:
# SOCIAL_AUTH_OIDC_OIDC_ENDPOINT, SOCIAL_AUTH_OIDC_KEY, SOCIAL_AUTH_GITHUB_SECRET, ...
# (SOCIAL_AUTH_REDIRECT_IS_HTTPS is read above, with the yes/no spellings env_bool accepts.)
globals().update(
    {
        name: value
        for name, value in social_auth_settings().items()
        if name != "SOCIAL_AUTH_REDIRECT_IS_HTTPS"
    }
)

# --- Logging ---------------------------------------------------------------------------------
# Every handler redacts bearer tokens and token fields (integrations/security/redaction.py), so even
# requests/urllib3 debug output cannot leak a token. Add the filter to any handler you add.
# The filter also masks by value every token and client secret the process knows
# (integrations/security/secrets_registry.py).
#
# CUSTODIAN_LOG_SQL (default false): log every SQL query with its parameters (session keys,
# password hashes, ciphertext...) on django.db.backends. Off, that logger stays at INFO even
# with LOG_LEVEL=DEBUG, so no query is ever logged. On, queries are logged at DEBUG (Django
# logs them only with DEBUG on) and still pass the redacting filter, which masks known secrets
# and password hashes but cannot recognise every sensitive parameter: use it locally only.
CUSTODIAN_LOG_SQL = env_bool("CUSTODIAN_LOG_SQL", False)
LOGGING = logging_config(level=env_str("LOG_LEVEL", "INFO"), log_sql=CUSTODIAN_LOG_SQL)
# Technical error pages and error e-mails hide token-bearing variables and parameters.
DEFAULT_EXCEPTION_REPORTER_FILTER = "integrations.security.redaction.ExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "integrations.security.redaction.ExceptionReporter"
