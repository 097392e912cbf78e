import datetime as dt

from django.urls import path, register_converter

from analytics import views


class MonthConverter:
    """YYYY-MM; a month that does not exist (2026-13) is not a match, so it is a 404."""

    regex = r"\d{4}-\d{2}"

    def to_python(self, value: str) -> dt.date:
        try:
            return dt.date(int(value[:4]), int(value[5:]), 1)
        except ValueError:
            raise ValueError(value) from None

    def to_url(self, value: dt.date) -> str:
        return f"{value:%Y-%m}"


register_converter(MonthConverter, "month")

app_name = "analytics"

urlpatterns = [
    path("usage/", views.usage_page, name="usage"),
    path("usage/export.csv", views.usage_csv, name="usage-csv"),
    path("usage/statement/<month:month>/", views.statement_page, name="statement"),
    path("usage/statement/<month:month>.csv", views.statement_csv_download, name="statement-csv"),
]
