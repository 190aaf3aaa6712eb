"""Django set up outside a request (the server before it serves, `ascep users`, `ascep up`), with the
database migrated: nobody runs manage.py by hand."""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

# Any fixed number: the PostgreSQL advisory lock all ASCEP dashboards take while they migrate.
_PG_MIGRATION_LOCK = 0x41534345


def open_database() -> None:
    """Sets Django up (once per process), applies the migrations that are not applied yet and drops expired
    sessions. Several processes starting at once (two dashboards, `ascep users` beside one) take turns at the
    migrations, so none sees a table half made."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django
    from django.core.management import call_command

    django.setup()
    with _migration_lock():
        call_command("migrate", interactive=False, verbosity=0)
    call_command("clearsessions")  # expired sessions would otherwise stay in the table for ever


@contextmanager
def _migration_lock() -> Iterator[None]:
    """A file lock beside a SQLite database, an advisory lock on PostgreSQL; other databases: none, so start
    one dashboard alone after an upgrade there."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with open(f"{connection.settings_dict['NAME']}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_PG_MIGRATION_LOCK])
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_PG_MIGRATION_LOCK])
    else:
        yield
