"""Runs the dashboard under uvicorn: serve() in this process, start() as a child process."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ascep.services import Service, free_port, spawn, wait_for_port


def serve(host: str, port: int, redis_url: str, lake: str | None = None) -> None:
    """Blocks until stopped. Quiet: only errors reach stderr (JSON lines, see ascep.log).

    `lake` (a directory or s3://bucket/prefix) is what /analytics reads; without it the settings
    and the running stack say where the lake is."""
    os.environ["ASCEP_REDIS"] = redis_url
    if lake:
        os.environ["ASCEP_LAKE"] = lake
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


def start(redis_url: str, log_dir: Path, host: str = "127.0.0.1", port: int | None = None,
          env: dict[str, str] | None = None) -> Service:
    """serve() in a child process of its own session; returns once it listens. Errors go to <log_dir>/dashboard-<port>.log."""
    port = port or free_port()
    code = "import sys; from dashboard.server import serve; serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])"
    proc, log_path = spawn(f"dashboard-{port}", [sys.executable, "-c", code, host, str(port), redis_url], log_dir,
                           env={**os.environ, **(env or {})})
    wait_for_port(port, proc, "dashboard", host=host)
    return Service("dashboard", f"http://{host}:{port}", proc, log_path)
