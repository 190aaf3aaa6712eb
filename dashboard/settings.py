"""Django settings for the dashboard, taken from the one ascep Settings object.

The dashboard keeps no data of its own (Redis holds everything the job writes), so there is no
database, no session and no auth. The Redis address comes from ASCEP_REDIS (set by `ascep up`
and by dashboard.server.serve), else from the settings file or the running stack.
"""
from __future__ import annotations

import secrets

from core.settings import load_settings
from core.stack_file import resolve

ASCEP_SETTINGS = load_settings()
REDIS_URL = resolve(ASCEP_SETTINGS, "redis")

# Nothing is signed or stored between runs, so a fresh key per process is enough.
SECRET_KEY = secrets.token_urlsafe(50)
DEBUG = False
_bound_to_all = ASCEP_SETTINGS.dashboard.host in ("0.0.0.0", "::", "")
ALLOWED_HOSTS = ["*"] if _bound_to_all else ["localhost", "127.0.0.1", "[::1]", ASCEP_SETTINGS.dashboard.host]

INSTALLED_APPS = ["channels", "django.contrib.staticfiles", "dashboard"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"
DATABASES: dict = {}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "OPTIONS": {}}]
STATIC_URL = "/static/"
# POST /api/rules/<id>/test takes its ticks in the body: room for about 200,000 of them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024
USE_TZ = True
TIME_ZONE = "UTC"

# No CHANNEL_LAYERS: the live relay fans out in memory (dashboard/live.py says why).

# core.log sets up JSON logs on stderr; Django's own config would hide errors when DEBUG is off.
LOGGING_CONFIG = None
