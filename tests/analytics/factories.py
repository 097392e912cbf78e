"""Ledger rows at chosen moments, written through the ledger's own service."""

import datetime as dt
from unittest import mock

from analytics.models import UsageFailure, UsageRecord
from analytics.services import usage_failure_record, usage_record_create
from synthesis.models import SynthesisJob
from tests.synthesis.factories import SynthesisJobFactory


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def record_at(tenant, at: dt.datetime, *, voice_id: str = "piper:en_US-joe-medium", engine: str = "piper",
              api_key=None, characters: int = 100, cached: bool = False, audio_seconds: float = 2.5,
              processing_seconds: float = 0.5, created_by=None, batch=None) -> UsageRecord:
    """A finished job and its usage record, written at `at` (the ledger stamps its own time)."""
    job = SynthesisJobFactory(tenant=tenant, voice_id=voice_id, engine=engine, api_key=api_key,
                              characters=characters, audio_seconds=audio_seconds, cache_hit=cached,
                              processing_seconds=processing_seconds, created_by=created_by, batch=batch,
                              model_version="test-model-1")
    with mock.patch("django.utils.timezone.now", return_value=at):
        return usage_record_create(tenant=tenant, job=job, characters_billed=0 if cached else characters,
                                   cached=cached, processing_seconds=processing_seconds)


def failure_at(tenant, at: dt.datetime, *, voice_id: str = "piper:en_US-joe-medium", engine: str = "piper",
               api_key=None) -> UsageFailure:
    job = SynthesisJobFactory(tenant=tenant, voice_id=voice_id, engine=engine, api_key=api_key,
                              status=SynthesisJob.Status.FAILED, error_code="synthesis_failed", storage_path="")
    with mock.patch("django.utils.timezone.now", return_value=at):
        return usage_failure_record(tenant=tenant, job=job)
