from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import dramatiq

        from config.dramatiq import configure_broker
        from tenants.api import schema  # noqa: F401  registers the OpenAPI auth schemes

        # django_dramatiq (earlier in INSTALLED_APPS) has set the broker by now.
        configure_broker(dramatiq.get_broker())
