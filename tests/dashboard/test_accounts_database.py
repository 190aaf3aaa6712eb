"""The accounts on another database than the default SQLite: a real PostgreSQL server (Debian's, started here on
a free port), named by dashboard.database_url as a deployment names its own. Two dashboards start at once on
its empty database and migrate it together; `ascep users` then works on the same data."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from ascep.services import free_port, spawn, start_dashboard, wait_for_port

pytestmark = pytest.mark.integration


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(f"no PostgreSQL {name} here: install Debian's postgresql (./dev test does)")
    return found[-1]


@pytest.fixture(scope="module")
def postgres_url(service_logs):
    """postgres://... of a server of its own. PostgreSQL refuses to run as root: as root, it runs as postgres."""
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="ascep-pg-"))
    if as_postgres:
        shutil.chown(data, "postgres")
    subprocess.run([*as_postgres, postgres_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "ascep"],
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    proc, _ = spawn("postgres", [*as_postgres, postgres_bin("postgres"), "-D", str(data), "-p", str(port), "-k",
                                 str(data), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], service_logs)
    try:
        wait_for_port(port, proc, "PostgreSQL")
        yield f"postgres://ascep@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def test_dashboards_and_ascep_users_share_accounts_on_postgresql(postgres_url, dashboard_redis, service_logs,
                                                                   tmp_path):
    env = {"ASCEP_STATE_DIR": str(tmp_path), "ASCEP_DASHBOARD__DATABASE_URL": postgres_url,
           "ASCEP_DASHBOARD__SECRET_KEY": "one key for every process behind one address",
           "ASCEP_DASHBOARD__ANONYMOUS_READ": "false"}
    with ThreadPoolExecutor(2) as pool:  # both find the database empty and migrate it, one after the other
        servers = list(pool.map(lambda _: start_dashboard(dashboard_redis, service_logs, env=env), range(2)))
    try:
        def users(*args: str, stdin: str | None = None) -> str:
            done = subprocess.run([sys.executable, "-m", "ascep.cli", "users", *args], input=stdin, text=True,
                                  capture_output=True, timeout=60, env={**os.environ, **env})
            assert done.returncode == 0, done.stderr
            return done.stdout

        users("create", "pat", "--role", "editor", "--password-stdin", stdin="pat's long passphrase\n")
        token = users("token", "create", "pat").strip()
        for server in servers:
            me = requests.get(f"{server.address}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert me.json() == {"name": "pat", "role": "editor", "via": "token"}
        assert "pat" in users("list")
    finally:
        for server in servers:
            server.stop()
    assert not (tmp_path / "dashboard.sqlite3").exists() and not (tmp_path / "dashboard-secret-key").exists()
    for server in servers:
        assert server.log_path.read_text() == "", "a dashboard logged an error"


def test_a_database_url_that_is_none_is_refused_without_showing_it(dashboard_redis, service_logs, tmp_path):
    done = subprocess.run([sys.executable, "-m", "ascep.cli", "users", "list"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "ASCEP_STATE_DIR": str(tmp_path),
                                           "ASCEP_DASHBOARD__DATABASE_URL": "nosuchdb://user:s3cret@host/db"})
    assert done.returncode == 1
    assert "ASCEP_DASHBOARD__DATABASE_URL is not a database URL dj-database-url knows" in done.stderr
    assert "s3cret" not in done.stderr
