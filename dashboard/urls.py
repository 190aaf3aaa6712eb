from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.index, name="index"),
    path("api/signals", views.signals),
    path("api/signals/<str:signal_id>", views.signal_detail),
    path("api/prices", views.prices),
    path("api/stats", views.stats),
    path("api/health", views.health),
    path("api/config", views.config),
]

handler404 = views.not_found
handler500 = views.server_error
