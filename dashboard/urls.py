from django.urls import path

from dashboard import pages, views

urlpatterns = [
    path("", views.index, name="index"),
    path("api/signals", views.signals),
    path("api/signals/<str:signal_id>", views.signal_detail),
    path("api/prices", views.prices),
    path("api/stats", views.stats),
    path("api/health", views.health),
    path("api/config", views.config),
    path("api/rules", views.rules),
    path("api/rules/<str:rule_id>/test", views.rule_test),
    path("analytics", views.analytics_page, name="analytics"),
    path("api/analytics", views.analytics_api),
    path("rules", pages.rules_page, name="rules"),
    path("signals/<str:signal_id>", pages.signal_page, name="signal"),
]

handler404 = views.not_found
handler500 = views.server_error
