"""ASGI entry: HTTP through Django (plus its static files), WebSockets through Channels, whose live socket
follows READ's rule (dashboard.access.ReadSocket) with the session of the login page or an API token."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

from django.core.asgi import get_asgi_application  # noqa: E402  (settings module must be set first)

django_http = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.REDIS_URL is None:  # dashboard.settings allows it for `ascep users`; serving needs Redis
    raise LookupError("no redis address: start `ascep up`, or pass --redis / set ASCEP_REDIS")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from dashboard.access import ReadSocket  # noqa: E402
from dashboard.live import LiveConsumer  # noqa: E402
from dashboard.metrics import count_websockets  # noqa: E402

application = ProtocolTypeRouter({
    # Django serves its own few static files; nothing to build or collect.
    "http": ASGIStaticFilesHandler(django_http),
    "websocket": count_websockets(AllowedHostsOriginValidator(AuthMiddlewareStack(ReadSocket(
        URLRouter([path("ws/live", LiveConsumer.as_asgi())]))))),
})
