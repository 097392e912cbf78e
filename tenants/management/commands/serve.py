import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import WSGIServer, run


class Command(BaseCommand):
    help = (
        "Serve Parla in embedded mode: one process with a threaded web server and an "
        "in-process Dramatiq worker. --setup first migrates, collects static files and "
        "seeds the demo tenant. For production use gunicorn and rundramatiq."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--setup", action="store_true", help="Migrate, collect static, seed demo.")

    def handle(self, *args, host: str, port: int, setup: bool, **options):
        if setup:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            call_command("seed_demo", stdout=self.stdout)
        from config.wsgi import application  # Starts the embedded worker when configured.

        mode = "embedded" if settings.EMBEDDED else "services"
        self.stdout.write(f"Parla ({mode} mode) is serving at http://{host}:{port}/  (Ctrl-C stops)")
        sys.stdout.flush()
        try:
            run(host, port, application, threading=True, server_cls=WSGIServer)
        except KeyboardInterrupt:
            pass
        finally:
            from config.embedded import stop_embedded_worker

            stop_embedded_worker()
