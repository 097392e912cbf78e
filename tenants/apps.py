from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.runtime.upkeep import upkeep_task_register
        from tenants.api import schema  # noqa: F401  registers the OpenAPI auth schemes
        from tenants.idempotency import idempotency_records_purge_expired_all_tenants
        from tenants.quotas import quota_reservations_release_stale_all_tenants

        # The workers' upkeep: holds whose work died without settling them, expired keys.
        upkeep_task_register("reservations_released", lambda _round: quota_reservations_release_stale_all_tenants(),
                             stage="release")
        upkeep_task_register("idempotency_keys_purged",
                             lambda _round: idempotency_records_purge_expired_all_tenants(), stage="release")
