"""Submit a batch from a file and follow it in the terminal until it ends.

    python manage.py batch_submit lines.csv --tenant acme --voice piper:en_US-joe-medium --format mp3
"""

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tenants.errors import ApplicationError

BAR_WIDTH = 30


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def progress_line(batch, progress: dict) -> str:
    filled = int(BAR_WIDTH * progress["percent"] / 100)
    counts = progress["counts"]
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress['percent']:5.1f}%  "
        f"{progress['done']}/{batch.items_total}  ok {counts['succeeded']}  failed {counts['failed']}  "
        f"ETA {_duration(progress['eta_seconds'])}  {batch.status}"
    )


class Command(BaseCommand):
    help = "Submit a TXT, CSV, Markdown or DOCX file as a batch and show its progress until it ends."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--voice", default="", help="Default voice (catalog id or name, or a voice id).")
        parser.add_argument("--format", default="wav", help="wav, flac, mp3, opus, ogg, m4a or pcm.")
        parser.add_argument("--name", default="")
        parser.add_argument("--webhook-url", default="")
        parser.add_argument("--no-wait", action="store_true", help="Submit and return at once.")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between progress updates.")

    def handle(self, *args, **options):
        from batches.models import Batch
        from batches.services import batch_create, batch_items_from_upload, batch_progress
        from synthesis.audio import AudioOptions
        from tenants.models import Tenant

        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        tenant = Tenant.objects.filter(slug=options["tenant"]).select_related("plan").first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        try:
            batch = batch_create(
                tenant=tenant,
                items=batch_items_from_upload(tenant=tenant, data=path.read_bytes(), filename=path.name),
                voice=options["voice"],
                audio=AudioOptions.from_request({"format": options["format"]}),
                name=options["name"] or path.name,
                webhook_url=options["webhook_url"],
                source_filename=path.name,
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(f"Batch {batch.pk}: {batch.items_total} items, {batch.characters_total} characters.")
        if options["no_wait"]:
            return
        interactive = sys.stdout.isatty()
        while True:
            batch = Batch.objects.for_tenant(tenant).get(pk=batch.pk)
            line = progress_line(batch, batch_progress(tenant=tenant, batch=batch))
            self.stdout.write(("\r" + line) if interactive else line, ending="" if interactive else "\n")
            self.stdout.flush()
            if batch.finished and batch.export_status in (Batch.ExportStatus.READY, Batch.ExportStatus.FAILED):
                break
            time.sleep(options["interval"])
        self.stdout.write("")
        self.stdout.write(f"Batch {batch.pk} {batch.status}. Export: {batch.export_status}"
                          + (f" ({batch.export_path})" if batch.export_path else ""))
        if batch.status in (Batch.Status.FAILED,):
            raise CommandError("The batch failed.")
