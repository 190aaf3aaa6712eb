"""Runs the dashboard under uvicorn in this process; `ascep up` calls serve() in a child process."""
from __future__ import annotations

import logging
import os


def serve(host: str, port: int, redis_url: str) -> None:
    """Blocks until stopped. Quiet: only errors reach stderr (JSON lines, see ascep.log)."""
    os.environ["ASCEP_REDIS"] = redis_url
    os.environ["ASCEP_DASHBOARD__HOST"] = host
    os.environ["ASCEP_DASHBOARD__PORT"] = str(port)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

    import uvicorn

    from ascep.log import configure_logging

    configure_logging()
    # 4xx responses are the client's business, not log noise.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    uvicorn.run("dashboard.asgi:application", host=host, port=port, log_level="error", access_log=False,
                lifespan="off", log_config=None, server_header=False)
