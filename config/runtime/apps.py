from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """Sets the broker up once django_dramatiq (listed before it) has built it."""

    name = "config.runtime"
    label = "runtime"

    def ready(self) -> None:
        import dramatiq

        from config.runtime.broker import configure_broker

        configure_broker(dramatiq.get_broker())
