"""Runs the dashboard under uvicorn in this process (ascep.services.start_dashboard runs it as a child)."""
from __future__ import annotations

import logging
import os

from core.log import configure_logging


def serve(host: str, port: int, redis_url: str, lake: str | None = None, checkpoints: str | None = None,
          kafka: str | None = None, anonymous_read: bool | None = None) -> None:
    """Blocks until stopped. Quiet: only errors reach stderr (JSON lines, see core.log).

    `lake` (a directory or s3://bucket/prefix) is what /analytics reads; without it the settings
    and the running stack say where the lake is. `checkpoints` is the job's checkpoint folder, whose
    newest checkpoint /api/health reports. `kafka` is the broker of the `rules` topic /api/rules reads and writes;
    without it, the settings and the running stack say. `anonymous_read` overrides dashboard.anonymous_read.
    The accounts database is migrated before the first request."""
    os.environ["ASCEP_REDIS"] = redis_url
    if anonymous_read is not None:
        os.environ["ASCEP_DASHBOARD__ANONYMOUS_READ"] = str(anonymous_read).lower()
    if lake:
        os.environ["ASCEP_LAKE"] = lake
    if kafka:
        os.environ["ASCEP_KAFKA"] = kafka
    if checkpoints:
        os.environ["ASCEP_DASHBOARD__CHECKPOINTS"] = checkpoints
    os.environ["ASCEP_DASHBOARD__HOST"] = host
    os.environ["ASCEP_DASHBOARD__PORT"] = str(port)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

    import uvicorn

    from dashboard.accounts.database import open_database

    configure_logging()
    open_database()
    # 4xx responses are the client's business, not log noise.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    # proxy_headers off: uvicorn would believe X-Forwarded-For from any local peer; dashboard.proxy_count says
    # how many proxies to believe (dashboard/access.py, client_address).
    uvicorn.run("dashboard.asgi:application", host=host, port=port, log_level="error", access_log=False,
                lifespan="off", log_config=None, server_header=False, proxy_headers=False)
