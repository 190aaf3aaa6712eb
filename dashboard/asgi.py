"""ASGI entry: HTTP through Django (plus its static files), WebSockets through Channels."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

from django.core.asgi import get_asgi_application  # noqa: E402  (settings module must be set first)

django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from dashboard.live import LiveConsumer  # noqa: E402
from dashboard.metrics import count_websockets  # noqa: E402

application = ProtocolTypeRouter({
    # Django serves its own few static files; nothing to build or collect.
    "http": ASGIStaticFilesHandler(django_http),
    "websocket": count_websockets(AllowedHostsOriginValidator(URLRouter([path("ws/live", LiveConsumer.as_asgi())]))),
})
