"""Batches: many texts with shared settings, run as independent jobs, then exported.

    items = batch_items_from_upload(tenant=t, data=data, filename="lines.csv")
    batch = batch_create(tenant=t, items=items, voice="...")

Creating a batch checks every item (text, SSML, voice, length) and the plan (items per batch,
characters per request, monthly characters, jobs at once) before anything runs, holds the
whole batch's characters in one reservation, and writes one SynthesisJob per item; the jobs
are enqueued after commit. Each finished item calls batch_item_finished(); the last one
finishes the batch: the reservation is settled with what the items used (unused characters
go back), the slot is freed, and the export (ZIP + manifest) is queued, then the webhook.
"""

import dataclasses
import logging

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from analytics.models import UsageRecord
from batches.models import Batch
from batches.parsing import (
    BatchItemInput,
    InvalidBatch,
    TooManyItems,
    items_from_json,
    items_from_upload,
    safe_filename,
)
from synthesis.audio import AudioOptions
from synthesis.jobs import (
    BatchJobSpec,
    audio_length_check,
    batch_jobs_cancel_queued,
    batch_jobs_requeue_failed,
    jobs_create_for_batch,
    jobs_enqueue_queued,
)
from synthesis.models import SynthesisJob
from synthesis.selectors import ResolvedVoice, speech_voice_resolve
from synthesis.text import prepare
from tenants.errors import ApplicationError, InvalidState
from tenants.models import ApiKey, Tenant
from tenants.quotas import (
    job_slot_acquire,
    job_slot_release,
    quota_reservation_settle,
    quota_reserve,
)
from tenants.services import SYSTEM, AuditContext, audit_event_record

logger = logging.getLogger(__name__)


class BatchOverPlan(InvalidBatch):
    """More items than the plan allows in a batch, or an item longer than it allows a request.

    The code stays invalid_batch (the batch is refused as a whole); operators count it as a
    plan_limit refusal, like the same limits met by a single request."""

    quota_reason = "plan_limit"


@dataclasses.dataclass(frozen=True)
class _CheckedItem:
    index: int
    text: str
    ssml: str
    voice: ResolvedVoice
    filename: str
    characters: int


def batch_items_from_upload(*, tenant: Tenant, data: bytes, filename: str) -> list[BatchItemInput]:
    """The items of an uploaded file, read no further than the first item past the plan's limit.

    SECURITY: the parsers are lazy, so a file of millions of short lines costs what reading
    batch_items + 1 of them costs, not millions of objects, before it is refused.
    """
    try:
        return items_from_upload(data, filename=filename, max_items=tenant.plan.batch_items)
    except TooManyItems:
        raise _too_many_items(tenant.plan, at_least=tenant.plan.batch_items + 1) from None


def batch_items_from_json(*, tenant: Tenant, raw_items) -> list[BatchItemInput]:
    """JSON items, counted against the plan's limit before any is checked."""
    if isinstance(raw_items, list) and len(raw_items) > tenant.plan.batch_items:
        raise _too_many_items(tenant.plan, items=len(raw_items))
    return items_from_json(raw_items)


def _too_many_items(plan, *, items: int | None = None, at_least: int | None = None) -> BatchOverPlan:
    if items is not None:
        return BatchOverPlan(
            f"The batch has {items} items; the {plan.name} plan allows {plan.batch_items} per batch.",
            extra={"limit": plan.batch_items, "items": items},
        )
    return BatchOverPlan(
        f"The batch has more than {plan.batch_items} items; the {plan.name} plan allows "
        f"{plan.batch_items} per batch.",
        extra={"limit": plan.batch_items, "items_at_least": at_least},
    )


def _check_items(*, tenant: Tenant, items: list[BatchItemInput], voice: str, language: str | None,
                 normalize: bool, audio: AudioOptions) -> list[_CheckedItem]:
    extension = audio.file_extension
    plan = tenant.plan
    if len(items) > plan.batch_items:
        raise _too_many_items(plan, items=len(items))
    voices: dict[str, ResolvedVoice] = {}
    width = max(4, len(str(len(items))))
    used_names: set[str] = set()
    checked = []
    for index, item in enumerate(items):
        where = item.origin or f"item {index + 1}"
        value = item.text if item.text is not None else (item.ssml or "")
        if len(value) > plan.request_characters:
            raise BatchOverPlan(
                f"{where.capitalize()} is {len(value)} characters; "
                f"the plan accepts {plan.request_characters} per item.",
                extra={"item": index + 1, "origin": where, "limit": plan.request_characters},
            )
        name = item.voice or voice
        try:
            if name not in voices:
                voices[name] = speech_voice_resolve(tenant=tenant, voice=name)
            resolved = voices[name]
            prepared = prepare(
                text=item.text, ssml=item.ssml, normalize=normalize,
                language=language or resolved.language.split("-")[0] or "en",
            )
            audio_length_check(tenant=tenant, prepared=prepared, voice=resolved, audio=audio)
            characters = prepared.billed_characters
        except ApplicationError as exc:
            # Name the offending line: the batch is refused as a whole.
            raise type(exc)(f"{where.capitalize()}: {exc.message}",
                            extra={**exc.extra, "item": index + 1, "origin": where}) from None
        stem = safe_filename(item.filename).rsplit(".", 1)[0] if item.filename else ""
        filename = f"{stem or str(index + 1).zfill(width)}.{extension}"
        if filename in used_names:
            raise InvalidBatch(f"{where.capitalize()}: the file name {filename!r} is used twice.",
                               extra={"item": index + 1, "origin": where, "filename": filename})
        used_names.add(filename)
        checked.append(_CheckedItem(index=index, text=item.text or "", ssml=item.ssml or "", voice=resolved,
                                    filename=filename, characters=characters))
    return checked


def _enqueue_items(batch: Batch, job_ids: list[int]) -> None:
    from batches.tasks.actors import batch_dispatch as batch_dispatch_actor

    # A worker sends the items' messages: thousands of them should not hold up the request.
    transaction.on_commit(lambda: batch_dispatch_actor.send(batch.tenant_id, batch.pk))


def batch_create(
    *,
    tenant: Tenant,
    items: list[BatchItemInput],
    voice: str = "",
    audio: AudioOptions | None = None,
    language: str | None = None,
    normalize: bool = True,
    name: str = "",
    webhook_url: str = "",
    source_filename: str = "",
    api_key: ApiKey | None = None,
    context: AuditContext = SYSTEM,
) -> Batch:
    from batches.webhooks import webhook_url_validate

    audio = audio or AudioOptions()
    if webhook_url:
        webhook_url_validate(webhook_url)
    checked = _check_items(tenant=tenant, items=items, voice=voice, language=language, normalize=normalize,
                           audio=audio)
    total = sum(item.characters for item in checked)
    default_voice = speech_voice_resolve(tenant=tenant, voice=voice)

    with transaction.atomic():
        job_slot_acquire(tenant=tenant)
        reservation = quota_reserve(tenant=tenant, characters=total, api_key=api_key)
        batch = Batch.objects.create(
            tenant=tenant, name=name, api_key=api_key, voice_id=default_voice.voice_id,
            options={"audio": dataclasses.asdict(audio), "language": language, "normalize": normalize},
            source_filename=source_filename[:255], webhook_url=webhook_url, items_total=len(checked),
            characters_total=total, reservation=reservation, holds_slot=True,
        )
        job_ids = jobs_create_for_batch(
            tenant=tenant, batch=batch, api_key=api_key, audio=audio, language=language, normalize=normalize,
            items=[BatchJobSpec(index=item.index, filename=item.filename, voice=item.voice, text=item.text,
                                ssml=item.ssml, characters=item.characters) for item in checked],
        )
        audit_event_record(tenant=tenant, action="batch.created", context=context, obj=batch,
                           extra={"items": len(checked), "characters": total})
        _enqueue_items(batch, job_ids)
    logger.info("batch_create.created", extra={"tenant_id": tenant.pk, "batch_id": batch.pk,
                                               "items": len(checked), "characters": total})
    return batch


def batch_dispatch_execute(*, tenant_id: int, batch_id: int) -> int:
    """Send the messages of a batch's queued items (idempotent: a duplicate is harmless)."""
    batch = Batch.objects.for_tenant(tenant_id).filter(pk=batch_id).first()
    if batch is None or batch.finished:
        return 0
    if batch.status == Batch.Status.QUEUED:
        Batch.objects.for_tenant(tenant_id).filter(pk=batch_id, status=Batch.Status.QUEUED).update(
            status=Batch.Status.RUNNING, started_at=timezone.now())
    return jobs_enqueue_queued(tenant_id=tenant_id, batch_id=batch_id)


def batch_counts(*, tenant: Tenant | int, batch: Batch) -> dict[str, int]:
    rows = (SynthesisJob.objects.for_tenant(tenant).filter(batch=batch)
            .values("status").annotate(n=Count("pk")))
    counts = dict.fromkeys(SynthesisJob.Status.values, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def batch_item_finished(*, tenant_id: int, batch_id: int) -> None:
    """Called after each item's job ends; the last one finishes the batch."""
    unfinished = SynthesisJob.objects.for_tenant(tenant_id).filter(
        batch_id=batch_id, status__in=[SynthesisJob.Status.QUEUED, SynthesisJob.Status.RUNNING]
    ).exists()
    if not unfinished:
        batch_finish(tenant_id=tenant_id, batch_id=batch_id)


def batch_finish(*, tenant_id: int, batch_id: int) -> Batch | None:
    """Settle, free the slot, set the final status and queue the export. Idempotent."""
    from batches.tasks.actors import batch_export as batch_export_actor

    with transaction.atomic():
        batch = Batch.objects.for_tenant(tenant_id).select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.finished:
            return batch
        counts = batch_counts(tenant=tenant_id, batch=batch)
        if counts[SynthesisJob.Status.QUEUED] or counts[SynthesisJob.Status.RUNNING]:
            return batch  # Not the last item after all (a retry started meanwhile).
        billed = UsageRecord.objects.for_tenant(tenant_id).filter(job__batch_id=batch_id).aggregate(
            total=Sum("characters_billed"))["total"] or 0
        if batch.reservation_id:
            quota_reservation_settle(tenant=tenant_id, reservation_id=batch.reservation_id, characters_used=billed)
        if batch.holds_slot:
            job_slot_release(tenant=tenant_id)
            batch.holds_slot = False
        succeeded, failed = counts[SynthesisJob.Status.SUCCEEDED], counts[SynthesisJob.Status.FAILED]
        if batch.cancel_requested_at:
            batch.status = Batch.Status.CANCELLED
        elif failed == 0:
            batch.status = Batch.Status.COMPLETED
        elif succeeded:
            batch.status = Batch.Status.COMPLETED_WITH_ERRORS
        else:
            batch.status = Batch.Status.FAILED
        batch.finished_at = timezone.now()
        batch.export_status = Batch.ExportStatus.PENDING
        batch.save()
        transaction.on_commit(lambda: batch_export_actor.send(tenant_id, batch_id))
    logger.info("batch_finish.finished", extra={"tenant_id": tenant_id, "batch_id": batch_id,
                                                "status": batch.status, "billed": billed})
    return batch


def batch_cancel(*, tenant: Tenant, batch: Batch, context: AuditContext = SYSTEM) -> Batch:
    """Queued items are not started; running ones finish; unused characters are refunded."""
    with transaction.atomic():
        batch = Batch.objects.for_tenant(tenant).select_for_update().get(pk=batch.pk)
        if batch.finished:
            raise InvalidState(f"The batch has already ended ({batch.status}).", extra={"status": batch.status})
        batch.cancel_requested_at = batch.cancel_requested_at or timezone.now()
        batch.save(update_fields=["cancel_requested_at"])
        batch_jobs_cancel_queued(tenant=tenant, batch_id=batch.pk)
        audit_event_record(tenant=tenant, action="batch.cancelled", context=context, obj=batch)
    batch_item_finished(tenant_id=tenant.pk, batch_id=batch.pk)
    return Batch.objects.for_tenant(tenant).get(pk=batch.pk)


def batch_retry(*, tenant: Tenant, batch: Batch, context: AuditContext = SYSTEM) -> Batch:
    """Run the failed items again (with a fresh hold of their characters)."""
    with transaction.atomic():
        batch = Batch.objects.for_tenant(tenant).select_for_update().get(pk=batch.pk)
        if not batch.finished or batch.status == Batch.Status.CANCELLED:
            raise InvalidState("Only a batch that has ended (and was not cancelled) can retry its failed items.",
                               extra={"status": batch.status})
        failed = SynthesisJob.objects.for_tenant(tenant).filter(batch=batch, status=SynthesisJob.Status.FAILED)
        characters = failed.aggregate(total=Sum("characters"))["total"] or 0
        if not characters and not failed.exists():
            raise InvalidState("The batch has no failed items.", extra={"status": batch.status})
        job_slot_acquire(tenant=tenant)
        batch.reservation = quota_reserve(tenant=tenant, characters=characters, api_key=batch.api_key)
        batch.holds_slot = True
        batch.status = Batch.Status.RUNNING
        batch.finished_at = None
        batch.export_status, batch.export_error = Batch.ExportStatus.NONE, ""
        batch.save()
        batch_jobs_requeue_failed(tenant=tenant, batch_id=batch.pk)
        audit_event_record(tenant=tenant, action="batch.retried", context=context, obj=batch,
                           extra={"characters": characters})
        _enqueue_items(batch, [])
    return batch


def batch_progress(*, tenant: Tenant | int, batch: Batch) -> dict:
    """Counts per item status, percent done, ETA from the observed rate, totals so far."""
    counts = batch_counts(tenant=tenant, batch=batch)
    done = sum(counts[s] for s in SynthesisJob.TERMINAL)
    totals = SynthesisJob.objects.for_tenant(tenant).filter(batch=batch).aggregate(
        characters_done=Sum("characters", filter=Q(status=SynthesisJob.Status.SUCCEEDED)),
        audio_seconds=Sum("audio_seconds", filter=Q(status=SynthesisJob.Status.SUCCEEDED)),
    )
    eta = None
    if not batch.finished and batch.started_at and done:
        elapsed = (timezone.now() - batch.started_at).total_seconds()
        remaining = batch.items_total - done
        eta = round(elapsed / done * remaining, 1) if remaining else 0.0
    return {
        "counts": counts,
        "done": done,
        "percent": round(100 * done / batch.items_total, 1) if batch.items_total else 100.0,
        "eta_seconds": eta,
        "characters_done": totals["characters_done"] or 0,
        "audio_seconds": round(totals["audio_seconds"] or 0.0, 3),
    }


def batch_webhook_send(*, tenant_id: int, batch: Batch):
    """Queue the batch's end event to its webhook URL (or the tenant's default), if any."""
    from batches.webhooks import webhook_delivery_create

    tenant = Tenant.objects.get(pk=tenant_id)
    url = batch.webhook_url or tenant.webhook_url
    if not url:
        return None
    progress = batch_progress(tenant=tenant_id, batch=batch)
    payload = {
        "event": f"batch.{batch.status}",
        "created_at": timezone.now().isoformat(),
        "batch": {
            "id": batch.pk,
            "name": batch.name,
            "status": batch.status,
            "items_total": batch.items_total,
            "counts": progress["counts"],
            "characters": progress["characters_done"],
            "audio_seconds": progress["audio_seconds"],
            "export_url": f"/api/v1/batches/{batch.pk}/export" if batch.export_path else None,
            "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        },
    }
    return webhook_delivery_create(tenant=tenant_id, url=url, event=payload["event"], payload=payload, batch=batch)
