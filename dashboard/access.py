"""Who may do what, in one place: the django-ninja auth objects of the API, and the same rule for the pages
and the live socket.

READ: an API token (Authorization: Bearer <token>), a logged-in session, or anyone when
dashboard.anonymous_read allows it. WRITE: a token or session of an editor. Without credentials 401, with a
viewer's 403, an unknown or revoked token 401, each {"error": ...} saying so. A session's POST, PUT, PATCH
or DELETE must carry its CSRF token (X-CSRFToken: the csrftoken cookie, or <meta name="csrf-token"> of the
pages); a token's need not: a browser never sends one by itself. Each gives request.auth a Principal,
which rate limits count by (dashboard/ratelimit.py).

Every route is READ unless it says otherwise (the API's default, dashboard/api/__init__.py); a write route
says `auth=WRITE`.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.db.models import Exists, OuterRef
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer

from dashboard.accounts.models import ApiToken, token_digest
from dashboard.accounts.roles import EDITOR, role_of

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# A token's last use is written at most this often: one write per request would serialise SQLite.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who a request is from. `ident` is what rate limits count by: the user, or an anonymous client's address."""

    name: str  # the user's name; "" for an anonymous visitor
    role: str  # "editor", "viewer" or "anonymous"
    via: str  # "token", "session" or "anonymous"
    ident: str  # "user:<id>" or "ip:<address>"


def client_address(peer: str, forwarded_for: str | None) -> str:
    """The client's address: with dashboard.proxy_count proxies in front, the one the outermost of them saw
    (each appends its peer to X-Forwarded-For, so entries further left are the client's own say)."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    if settings.PROXY_COUNT and len(hops) >= settings.PROXY_COUNT:
        return hops[-settings.PROXY_COUNT]
    return peer


def _principal(user, in_editors: bool, via: str) -> Principal:
    return Principal(user.get_username(), role_of(user.is_superuser, [EDITOR] if in_editors else []), via,
                     f"user:{user.pk}")


async def _user_principal(user, via: str) -> Principal:
    return _principal(user, await user.groups.filter(name=EDITOR).aexists(), via)


async def token_principal(token: str) -> Principal | None:
    """The token's user, if the token is known, not revoked, and its user still active: one query (a DB call
    costs a thread hop here), revocation seen at the next request."""
    found = await (ApiToken.objects.select_related("user")
                   .filter(digest=token_digest(token), revoked_at=None, user__is_active=True)
                   .annotate(in_editors=Exists(Group.objects.filter(user=OuterRef("user"), name=EDITOR))).afirst())
    if found is None:
        return None
    now = timezone.now()
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_EVERY:
        await ApiToken.objects.filter(pk=found.pk).aupdate(last_used_at=now)
    return _principal(found.user, found.in_editors, "token")


def _anonymous(address: str) -> Principal | None:
    return Principal("", "anonymous", "anonymous", f"ip:{address}") if settings.ANONYMOUS_READ else None


def _permitted(principal: Principal, write: bool) -> Principal:
    if write and principal.role != EDITOR:
        raise HttpError(403, f"{principal.name} is a {principal.role}: writing rules needs the editor role")
    return principal


class _CsrfReason(CsrfViewMiddleware):
    """Django's CSRF check, giving its reason for a refusal instead of a 403 page."""

    def _reject(self, request, reason):
        return reason


def csrf_problem(request) -> str | None:
    checker = _CsrfReason(lambda request: None)
    request.csrf_processing_done = False
    checker.process_request(request)
    return checker.process_view(request, None, (), {})


class TokenAuth(HttpBearer):
    """Authorization: Bearer <token> (`ascep users token create`)."""

    def __init__(self, write: bool) -> None:
        self.write = write
        super().__init__()

    async def authenticate(self, request, token: str) -> Principal:
        principal = await token_principal(token)
        if principal is None:
            raise HttpError(401, "the API token is unknown or revoked (ascep users token list NAME shows them)")
        return _permitted(principal, self.write)


class SessionAuth(APIKeyCookie):
    """The session cookie of /accounts/login; writes with it need the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, write: bool) -> None:
        self.write = write
        super().__init__(csrf=True)  # csrf=True also has /api/docs send the token with "Try it out"

    def _get_key(self, request) -> str | None:
        return request.COOKIES.get(self.param_name)

    async def authenticate(self, request, key: str | None) -> Principal | None:
        if not key:
            return None
        user = await request.auser()
        if not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and (problem := csrf_problem(request)):
            raise HttpError(403, f"CSRF check failed ({problem.rstrip('.')}): send the csrftoken cookie's value "
                                 f'(or the page\'s <meta name="csrf-token">) in an X-CSRFToken header')
        return _permitted(await _user_principal(user, "session"), self.write)


class AnonymousRead:
    """Anyone, when dashboard.anonymous_read allows it; nobody otherwise."""

    async def __call__(self, request) -> Principal | None:
        return _anonymous(client_address(request.META.get("REMOTE_ADDR", ""),
                                         request.META.get("HTTP_X_FORWARDED_FOR")))


READ = (TokenAuth(write=False), SessionAuth(write=False), AnonymousRead())
WRITE = (TokenAuth(write=True), SessionAuth(write=True))


async def page_principal(request) -> Principal | None:
    user = await request.auser()
    if user.is_authenticated:
        return await _user_principal(user, "session")
    return await AnonymousRead()(request)


def read_page(view: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """For an async page view: READ's rule for a browser (no tokens); who it is goes to request.principal for
    the page's header, else the browser is sent to log in and come back."""
    @wraps(view)
    async def guarded(request, *args, **kwargs):
        principal = await page_principal(request)
        if principal is None:
            return redirect_to_login(request.get_full_path())
        request.principal = principal
        return await view(request, *args, **kwargs)
    return guarded


class ReadSocket:
    """ASGI middleware for the live WebSocket, inside channels' AuthMiddlewareStack (scope["user"] from the
    session cookie): READ's rule, with the token in an Authorization header or, for browsers, which cannot
    set one, `?token=`. A refused handshake is closed before it is accepted (HTTP 403)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        principal = await self._principal(scope)
        if principal is None:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4403})
            return None
        return await self.inner({**scope, "principal": principal}, receive, send)

    @staticmethod
    async def _principal(scope) -> Principal | None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            token = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
        if token:
            return await token_principal(token)
        user = scope.get("user")
        if user is not None and user.is_authenticated:
            return await _user_principal(user, "session")
        peer = (scope.get("client") or ("", 0))[0]
        return _anonymous(client_address(peer, headers.get("x-forwarded-for")))
