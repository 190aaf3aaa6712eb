"""The HTML pages and the error pages; the JSON API is dashboard/api/, logging in dashboard/accounts/.
The pages follow READ's rule (dashboard/access.py): without it, to the login page and back."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from ninja.errors import HttpError

from dashboard.access import read_page
from dashboard.analytics import page_context
from dashboard.api.analytics import figures_or_404
from dashboard.api.common import error_response


@require_GET
@read_page
async def index(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/index.html")


@require_GET
@read_page
async def analytics_page(request: HttpRequest) -> HttpResponse:
    try:
        gap_seconds = float(request.GET.get("gap_seconds", 10))
        if not 0 < gap_seconds < 10**9:
            raise ValueError
    except ValueError:
        return render(request, "dashboard/analytics.html",
                      {"missing": "gap_seconds must be a number of seconds > 0"}, status=400)
    try:
        figures = await figures_or_404(gap_seconds)
    except HttpError as exc:
        return render(request, "dashboard/analytics.html", {"missing": str(exc)}, status=exc.status_code)
    return render(request, "dashboard/analytics.html", page_context(figures))


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(404, f"no such page: {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(500, "internal error; the dashboard's log on stderr has the details")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form post (login, logout) without the page's CSRF token: reload the page and send it again."""
    return error_response(403, f"CSRF check failed: {reason}; reload the page and try again")
