"""/accounts/login and /accounts/logout: Django's session login, async (the pages and the API are), with the
login's rate limit (dashboard/ratelimit.py) counted per client address before the password is checked."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import aauthenticate, alogin, alogout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from redis.exceptions import RedisError

from dashboard.access import client_address, page_principal
from dashboard.ratelimit import RateLimited, hit


def _next(request: HttpRequest) -> str:
    """Where to go after logging in: a path of this site only, never another site (an open redirect)."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return wanted
    return settings.LOGIN_REDIRECT_URL


def _page(request: HttpRequest, status: int = 200, error: str = "") -> HttpResponse:
    return render(request, "accounts/login.html", {"next": _next(request), "error": error,
                                                   "username": request.POST.get("username", "")}, status=status)


@require_http_methods(["GET", "POST"])
async def login(request: HttpRequest) -> HttpResponse:
    request.principal = await page_principal(request)  # for the header's account corner
    if request.method == "GET":
        return _page(request)
    address = client_address(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))
    try:
        await hit("login", f"ip:{address}")
    except RateLimited as exc:
        response = _page(request, 429, str(exc))
        response["Retry-After"] = str(exc.retry_after_s)
        return response
    except RedisError as exc:
        return _page(request, 503, f"cannot log in now: the login rate limit lives in Redis, which is "
                                   f"unavailable ({exc})")
    user = await aauthenticate(request, username=request.POST.get("username", ""),
                               password=request.POST.get("password", ""))
    if user is None:
        return _page(request, 401, "wrong user name or password")
    await alogin(request, user)
    return redirect(_next(request))


@require_POST
async def logout(request: HttpRequest) -> HttpResponse:
    await alogout(request)
    return redirect(settings.LOGIN_URL)
