"""The HTML pages besides the live one: the rule editor, a signal's page and the signals' outcomes.

Each only renders its template; the page's script reads and writes through the JSON API, so what a
page can do, a script can do too, under the same checks. Seeing a page is READ (dashboard/access.py).
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from core.cep.rules import lexer, tree
from dashboard.access import read_page

# The editor highlights with the parser's own words, so the two cannot drift apart.
RULE_WORDS = {
    "keywords": " ".join(sorted(lexer.KEYWORDS)),
    "functions": " ".join((*tree.QUOTE_FUNCTIONS, *tree.WINDOW_FUNCTIONS, *tree.STAGE_AGGREGATES, "count", "abs")),
}


@require_GET
@ensure_csrf_cookie  # the page's writes send the CSRF token; the cookie it matches must be set by then
@read_page
async def rules_page(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/rules.html", RULE_WORDS)


@require_GET
@read_page
async def signal_page(request: HttpRequest, signal_id: str) -> HttpResponse:
    return render(request, "dashboard/signal.html", {"signal_id": signal_id})


@require_GET
@read_page
async def outcomes_page(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/outcomes.html")
