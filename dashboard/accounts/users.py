"""What `ascep users` does, on the dashboard's database (dashboard.accounts.database.open_database first).

Every failure is an AccountError whose message names the user or token and says what to do instead.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from dashboard.accounts.models import ApiToken, new_token_text, token_digest
from dashboard.accounts.roles import EDITOR, ROLES, role_of

FIRST_USER = "admin"


class AccountError(ValueError):
    """A request about users or tokens that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    last_login: datetime | None
    active_tokens: int


@dataclass(frozen=True)
class Token:
    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _user(name: str) -> User:
    try:
        return User.objects.get(username=name)
    except User.DoesNotExist:
        raise AccountError(f"no user {name!r} (ascep users list shows them)") from None


def create_user(name: str, role: str, password: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name or len(name) > 150 or not all(c.isalnum() or c in "@.+-_" for c in name):
        raise AccountError(f"user name {name!r}: up to 150 letters, digits and @.+-_")
    if User.objects.filter(username=name).exists():
        raise AccountError(f"user {name!r} exists already (ascep users remove {name} first)")
    _check_password(password, User(username=name))
    with transaction.atomic():
        user = User.objects.create_user(name, password=password)
        user.groups.add(Group.objects.get(name=role))


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AccountError(f"password for {user.username!r} refused: {' '.join(exc.messages)}") from None


def set_password(name: str, password: str) -> None:
    """Its sessions end with the old password (a session keeps a hash of it); its API tokens stay valid."""
    user = _user(name)
    _check_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])


def set_role(name: str, role: str) -> None:
    """Takes effect on the user's next request: roles are read per request, for sessions and tokens alike."""
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    user = _user(name)
    with transaction.atomic():
        if user.is_superuser and role != EDITOR:  # a superuser is an editor whatever its groups
            user.is_superuser = user.is_staff = False
            user.save(update_fields=["is_superuser", "is_staff"])
        user.groups.set([Group.objects.get(name=role)])


def list_users() -> list[Account]:
    users = User.objects.prefetch_related("groups").order_by("username")
    return [Account(user.username, role_of(user.is_superuser, [group.name for group in user.groups.all()]),
                    user.last_login,
                    user.api_tokens.filter(revoked_at=None).count()) for user in users]


def remove_user(name: str) -> None:
    """Its tokens and sessions go with it: the tokens by the foreign key, the sessions refuse it once it is gone."""
    _user(name).delete()


def create_token(name: str, label: str) -> tuple[int, str]:
    """(id, the token's text): the text is shown once and never stored."""
    text = new_token_text()
    token = ApiToken.objects.create(user=_user(name), label=label, digest=token_digest(text))
    return token.pk, text


def list_tokens(name: str) -> list[Token]:
    return [Token(t.pk, t.label, t.created_at, t.last_used_at, t.revoked_at) for t in _user(name).api_tokens.all()]


def revoke_token(name: str, token_id: int) -> None:
    """Refused at once by every dashboard process: they look each token up on every request."""
    updated = ApiToken.objects.filter(user=_user(name), pk=token_id, revoked_at=None).update(revoked_at=timezone.now())
    if not updated:
        raise AccountError(f"{name!r} has no active token {token_id} (ascep users token list {name} shows them)")


def random_password() -> str:
    """16 characters from 96 random bits: past every password validator, and typed from a terminal."""
    return secrets.token_urlsafe(12)


def first_editor() -> str | None:
    """With no user at all, make the editor FIRST_USER and return its new random password; else None."""
    if User.objects.exists():
        return None
    password = random_password()
    create_user(FIRST_USER, EDITOR, password)
    return password
