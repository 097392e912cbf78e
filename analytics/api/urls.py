from django.urls import path

from analytics.api.views import UsageCsvView, UsageView

urlpatterns = [
    path("usage", UsageView.as_view(), name="usage"),
    path("usage/", UsageView.as_view()),
    path("usage.csv", UsageCsvView.as_view(), name="usage-csv"),
]
