"""The two roles, free of Django so that `ascep users --help` lists them without setting Django up."""
from __future__ import annotations

from collections.abc import Iterable

VIEWER, EDITOR = "viewer", "editor"
ROLES = (VIEWER, EDITOR)  # the groups a user is in; an editor also writes rules


def role_of(is_superuser: bool, groups: Iterable[str]) -> str:
    """Superusers (Django's createsuperuser) are editors; a user in no role group reads only."""
    return EDITOR if is_superuser or EDITOR in groups else VIEWER
