from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.services import enrollment_usage_record
        from voices.events import on_enrollment_finished

        # Voices sits below analytics: it announces each enrollment's end, the ledger listens.
        on_enrollment_finished(
            lambda enrollment: enrollment_usage_record(tenant=enrollment.tenant_id, enrollment=enrollment)
        )
