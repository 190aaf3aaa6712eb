"""Django settings for the dashboard, taken from the one ascep Settings object (docs/configuration.md).

Redis holds everything the job writes; the dashboard's own database holds only accounts, API tokens and
sessions: SQLite in the state directory unless dashboard.database_url names another. The Redis address
comes from ASCEP_REDIS (set by `ascep up` and by dashboard.server.serve), else from the settings file or
the running stack; `ascep users` needs none, so it may be unknown here (dashboard.asgi refuses to serve then).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF

from core.settings import load_settings
from core.stack_file import resolve_optional

ASCEP_SETTINGS = load_settings()
REDIS_URL = resolve_optional(ASCEP_SETTINGS, "redis")
_dashboard = ASCEP_SETTINGS.dashboard
_state_dir = ASCEP_SETTINGS.state_dir.resolve()
SECRET_KEY_FILE = "dashboard-secret-key"


def _kept_secret_key(state_dir: Path) -> str:
    """The key in `state_dir`, made on first use: sessions then outlive a restart. Written to a private file
    and linked into place, so two processes starting at once agree on one key and never read half of it."""
    path = state_dir / SECRET_KEY_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        draft = state_dir / f".{SECRET_KEY_FILE}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _database() -> dict:
    if _dashboard.database_url is not None:
        url = _dashboard.database_url.get_secret_value()
        try:
            # A connection per request (CONN_MAX_AGE 0): under ASGI each request's database calls run in a
            # thread of their own, so a kept connection would be kept by a thread that is gone.
            return dj_database_url.parse(url)
        except ValueError as exc:  # the message would show the URL, and with it the password
            raise ValueError(f"ASCEP_DASHBOARD__DATABASE_URL is not a database URL dj-database-url knows "
                             f"({type(exc).__name__}): e.g. postgres://USER:PASSWORD@HOST:5432/NAME") from None
    _state_dir.mkdir(parents=True, exist_ok=True)
    # WAL and IMMEDIATE transactions: several dashboard processes (and `ascep users`) write sessions and
    # token use at once without "database is locked".
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_state_dir / "dashboard.sqlite3"),
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                        "transaction_mode": "IMMEDIATE", "timeout": 20}}


SECRET_KEY = (_dashboard.secret_key.get_secret_value() if _dashboard.secret_key is not None
              else _kept_secret_key(_state_dir))
DEBUG = False
_bound_to_all = _dashboard.host in ("0.0.0.0", "::", "")
ALLOWED_HOSTS = ["*"] if _bound_to_all else ["localhost", "127.0.0.1", "[::1]", _dashboard.host]

INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions", "corsheaders",
                  "channels", "django.contrib.staticfiles", "ninja", "dashboard", "dashboard.accounts"]
MIDDLEWARE = [
    "dashboard.metrics.RequestMetrics",  # first: it times the others too
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware, which may answer first
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"
DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The request in templates: base.html reads its CSP nonce (request.csp_nonce) and the URL's name from it, and
# the account corner (dashboard/_account.html) who is logged in (request.principal).
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request"]}}]
STATIC_URL = "/static/"
# POST /api/rules/<id>/test takes its ticks in the body: room for about 200,000 of them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024
USE_TZ = True
TIME_ZONE = "UTC"

# Accounts (dashboard/accounts, dashboard/access.py).
ANONYMOUS_READ = _dashboard.anonymous_read is True
RATE_LIMITS = _dashboard.rate_limits
PROXY_COUNT = _dashboard.proxy_count
LOGIN_URL = "/accounts/login"
LOGIN_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
CSRF_FAILURE_VIEW = "dashboard.views.csrf_failure"

# Security headers. Django's defaults already send X-Content-Type-Options: nosniff, Referrer-Policy:
# same-origin, Cross-Origin-Opener-Policy: same-origin and X-Frame-Options: DENY; said here so they stay.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _dashboard.https
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if _dashboard.https else 0
if PROXY_COUNT:  # the proxy terminates TLS and says so; a direct client cannot reach the port (its firewall)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Nothing inline runs; the rule editor's <style> tags carry the nonce it reads from <meta name="csp-nonce">.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF, NONCE],
    "img-src": [SELF, "data:"],
    "connect-src": [SELF, "ws:", "wss:"],
    "frame-ancestors": [NONE],
    "object-src": [NONE],
    "base-uri": [SELF],
    "form-action": [SELF],
}}
# Other origins may call the API (with a token: no cookies are sent cross-origin), never the pages.
CORS_ALLOWED_ORIGINS = list(_dashboard.cors_origins)
CORS_URLS_REGEX = r"^/api/.*$"

# No CHANNEL_LAYERS: the live relay fans out in memory (dashboard/live.py says why). With one configured, every
# consumer also waits on its channel in Redis, so a Redis outage killed each socket with a traceback instead
# of the relay's orderly 1011 close.

# core.log sets up JSON logs on stderr; Django's own config would hide errors when DEBUG is off.
LOGGING_CONFIG = None
