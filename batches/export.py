"""The batch export: one ZIP with every item's audio in input order, manifest.json and
manifest.csv. Written to a temporary file item by item, with each audio file copied in
chunks, so memory stays flat however many items there are; then stored in one go."""

import csv
import io
import json
import logging
import shutil
import tempfile
import zipfile

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse
from django.utils import timezone

from batches.models import Batch
from synthesis.models import SynthesisJob
from tenants.csv_cells import csv_cell

logger = logging.getLogger(__name__)

MANIFEST_FIELDS = ["index", "text", "voice", "file", "duration", "characters", "status", "error"]
_COPY_CHUNK = 1024 * 1024


def export_key(batch: Batch) -> str:
    return f"tenants/{batch.tenant_id}/batches/{batch.pk}/parla-batch-{batch.pk}.zip"


def _write_zip(batch: Batch, handle) -> int:
    items = (SynthesisJob.objects.for_tenant(batch.tenant_id).filter(batch=batch).order_by("batch_index")
             .only("batch_index", "text", "ssml", "voice_id", "filename", "status", "storage_path", "audio_seconds",
                   "characters", "error_code", "error_message", "audio_deleted_at"))
    rows = []
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for item in items.iterator(chunk_size=500):
            stored = item.status == SynthesisJob.Status.SUCCEEDED and item.storage_path and not item.audio_deleted_at
            if stored:
                # Audio is already compressed or not worth deflating: stored as is, streamed.
                with default_storage.open(item.storage_path, "rb") as source, \
                        archive.open(f"audio/{item.filename}", "w", force_zip64=True) as target:
                    shutil.copyfileobj(source, target, _COPY_CHUNK)
            rows.append({
                "index": item.batch_index + 1,
                "text": item.text or item.ssml,
                "voice": item.voice_id,
                "file": f"audio/{item.filename}" if stored else "",
                "duration": item.audio_seconds if stored else None,
                "characters": item.characters,
                "status": item.status,
                "error": item.error_message,
            })
        manifest = {
            "batch": batch.pk,
            "name": batch.name,
            "status": batch.status,
            "created_at": batch.created_at.isoformat(),
            "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
            "items": rows,
        }
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        # SECURITY: item texts and errors are the tenant's text; a spreadsheet would run a formula.
        writer.writerows({name: csv_cell(value) for name, value in row.items()} for row in rows)
        archive.writestr("manifest.csv", text.getvalue())
    return len(rows)


def batch_export_response(batch: Batch) -> FileResponse:
    """The finished ZIP as a download (the API and the dashboard serve the same file)."""
    response = FileResponse(default_storage.open(batch.export_path, "rb"), content_type="application/zip",
                            as_attachment=True, filename=f"parla-batch-{batch.pk}.zip")
    response["Content-Length"] = str(batch.export_size)
    return response


def batch_export_execute(*, tenant_id: int, batch_id: int) -> None:
    """Idempotent: the ZIP goes to a key derived from the batch; a rerun replaces it."""
    from batches.services import batch_webhook_send

    batch = Batch.objects.for_tenant(tenant_id).filter(pk=batch_id).first()
    if batch is None or not batch.finished or batch.export_status == Batch.ExportStatus.READY:
        return
    key = export_key(batch)
    with tempfile.TemporaryFile(prefix="parla-export-") as handle:
        count = _write_zip(batch, handle)
        size = handle.tell()
        handle.seek(0)
        if default_storage.exists(key):
            default_storage.delete(key)
        path = default_storage.save(key, File(handle, name=key.rsplit("/", 1)[-1]))
    with transaction.atomic():
        updated = Batch.objects.for_tenant(tenant_id).filter(pk=batch_id).update(
            export_status=Batch.ExportStatus.READY, export_path=path, export_size=size, export_error="")
        if updated:
            batch.refresh_from_db()
            transaction.on_commit(lambda: batch_webhook_send(tenant_id=tenant_id, batch=batch))
    logger.info("batch_export.written", extra={"tenant_id": tenant_id, "batch_id": batch_id,
                                               "items": count, "bytes": size, "at": timezone.now().isoformat()})
