from django.urls import path
from django.views.generic import RedirectView

from dashboard import pages, views
from dashboard.accounts import views as accounts
from dashboard.api import api
from dashboard.metrics import metrics_view

urlpatterns = [
    path("", views.index, name="index"),
    path("analytics", views.analytics_page, name="analytics"),
    path("analytics/outcomes", pages.outcomes_page, name="outcomes"),
    path("rules", pages.rules_page, name="rules"),
    path("signals/<str:signal_id>", pages.signal_page, name="signal"),
    path("accounts/login", accounts.login, name="login"),
    path("accounts/logout", accounts.logout, name="logout"),
    path("api/", api.urls),
    # The browsable API description (django-ninja's Swagger UI, served from its own static files).
    path("docs", RedirectView.as_view(url="/api/docs", permanent=False)),
    # Prometheus's exposition of this process, a plain view: not part of the JSON API or its schema.
    path("metrics", metrics_view, name="metrics"),
]

handler404 = views.not_found
handler500 = views.server_error
