from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import dramatiq

        from config.dramatiq import configure_broker

        # django_dramatiq (earlier in INSTALLED_APPS) has set the broker by now.
        configure_broker(dramatiq.get_broker())
