import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402

if settings.PARLA_EMBEDDED_WORKER:
    # Embedded mode: the web process also works its queues (in-memory broker).
    from config.embedded import start_embedded_worker

    start_embedded_worker(threads=settings.PARLA_EMBEDDED_WORKER_THREADS)
