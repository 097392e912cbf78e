"""The audio cache: an identical request returns stored audio without synthesis.

Identical means the same tenant, voice, engine and model version (and speaker conditioning
for cloned or matched voices), the same normalised segments (text, pauses, prosody,
language) and every audio parameter. The key is a SHA-256 over a canonical JSON of those.
"""

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from synthesis.jobs.commits import relaxed_commit_sql
from synthesis.models import CachedAudio
from synthesis.types import Segment

logger = logging.getLogger(__name__)

# Bump when the front-end or pipeline changes what the same input sounds like.
CACHE_SCHEMA = 1


def audio_cache_key(
    *,
    tenant_id: int,
    voice_id: str,
    engine: str,
    model_version: str,
    segments: Iterable[Segment],
    audio_options: object,
    conditioning_digest: str = "",
) -> str:
    payload = {
        "schema": CACHE_SCHEMA,
        "tenant": tenant_id,
        "voice": voice_id,
        "engine": engine,
        "model_version": model_version,
        "conditioning": conditioning_digest,
        "segments": [dataclasses.asdict(segment) for segment in segments],
        "audio": dataclasses.asdict(audio_options) if dataclasses.is_dataclass(audio_options) else audio_options,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _storage_path(tenant_id: int, key: str, extension: str) -> str:
    return f"tenants/{tenant_id}/cache/{key[:2]}/{key}.{extension}"


def cached_audio_get(*, tenant, key: str) -> CachedAudio | None:
    """The stored entry, counted as a hit; None (and the stale row dropped) if its file is gone."""
    entry = CachedAudio.objects.for_tenant(tenant).filter(key=key).first()
    if entry is None:
        return None
    if not default_storage.exists(entry.storage_path):
        CachedAudio.objects.for_tenant(tenant).filter(pk=entry.pk).delete()
        logger.warning("cached_audio_get.file_missing", extra={"tenant_id": entry.tenant_id, "key": key})
        return None
    _count_hit(entry)
    return entry


def _count_hit(entry: CachedAudio) -> None:
    if connection.vendor == "postgresql":
        # A counter: not worth a flush of the log, nor a transaction of its own.
        with connection.cursor() as cursor:
            cursor.execute(_COUNT_HIT.format(relaxed=relaxed_commit_sql()),
                           {"now": timezone.now(), "id": entry.pk, "tenant_id": entry.tenant_id})
    else:
        CachedAudio.objects.for_tenant(entry.tenant_id).filter(pk=entry.pk).update(
            hits=F("hits") + 1, last_hit_at=timezone.now()
        )


_COUNT_HIT = f"""
UPDATE {CachedAudio._meta.db_table} SET hits = hits + 1, last_hit_at = %(now)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s
RETURNING {{relaxed}}
"""


# Cached audio larger than this is copied to a temporary file rather than read into memory.
LARGE_AUDIO_BYTES = 16 * 1024 * 1024


def cached_audio_read(*, entry: CachedAudio) -> bytes | Path:
    """The entry's audio: its bytes, or past LARGE_AUDIO_BYTES a temporary copy of its file
    that the caller owns (and deletes once it has used it)."""
    with default_storage.open(entry.storage_path, "rb") as handle:
        if entry.size_bytes <= LARGE_AUDIO_BYTES:
            return handle.read()
        with tempfile.NamedTemporaryFile(prefix="parla-cached-", suffix=Path(entry.storage_path).suffix,
                                         delete=False) as copy:
            shutil.copyfileobj(handle, copy, 1 << 20)
        return Path(copy.name)


def audio_content(data: bytes | Path) -> File:
    """What storage saves for rendered audio: the bytes, or the file read as it is copied."""
    if isinstance(data, Path):
        return File(data.open("rb"), name=data.name)
    return ContentFile(data)


def audio_size(data: bytes | Path) -> int:
    return data.stat().st_size if isinstance(data, Path) else len(data)


@dataclasses.dataclass(frozen=True)
class CacheDraft:
    """A rendered miss waiting to become a cache entry: its file first, then its row.

    A worker writes the file before it settles the job and inserts the row as it settles
    (synthesis.jobs.settle), so a job whose settling failed never finds its own entry on its
    retry (it would bill itself nothing)."""

    tenant_id: int
    key: str
    data: bytes | Path  # a long render's audio is a file (synthesis.render)
    extension: str
    voice_id: str
    engine: str
    model_version: str
    format: str
    content_type: str
    sample_rate: int
    duration_seconds: float

    @property
    def path(self) -> str:
        return _storage_path(self.tenant_id, self.key, self.extension)

    def write_file(self) -> str:
        """Store the audio under its deterministic path (a second writer overwrites identical bytes)."""
        if default_storage.exists(self.path):
            default_storage.delete(self.path)
        content = audio_content(self.data)
        try:
            return default_storage.save(self.path, content)
        finally:
            content.close()

    def row_values(self, storage_path: str) -> dict:
        return {
            "tenant_id": self.tenant_id, "key": self.key, "storage_path": storage_path, "voice_id": self.voice_id,
            "engine": self.engine, "model_version": self.model_version, "format": self.format,
            "content_type": self.content_type, "sample_rate": self.sample_rate,
            "duration_seconds": self.duration_seconds, "size_bytes": audio_size(self.data),
        }

    def store(self) -> CachedAudio:
        """File and row at once (outside a job's settlement)."""
        return self.insert_row(self.write_file())

    def insert_ctes(self, storage_path: str, *, source: str, now) -> tuple[str, dict]:
        """PostgreSQL: what insert_row() does, as a CTE (`cache_entry`) of a caller's one
        statement, written when its CTE `source` has a row. Returns (the CTE, its parameters);
        tests/synthesis/test_settle.py holds it to the same row as insert_row()."""
        values = self.row_values(storage_path)
        sql = f"""
cache_entry AS (
    INSERT INTO {CachedAudio._meta.db_table} (
        tenant_id, key, storage_path, voice_id, engine, model_version, format, content_type, sample_rate,
        duration_seconds, size_bytes, hits, created_at)
    SELECT %(cache_tenant_id)s, %(cache_key)s, %(cache_storage_path)s, %(cache_voice_id)s, %(cache_engine)s,
           %(cache_model_version)s, %(cache_format)s, %(cache_content_type)s, %(cache_sample_rate)s,
           %(cache_duration_seconds)s, %(cache_size_bytes)s, 0, %(cache_now)s
    FROM {source}
    ON CONFLICT (tenant_id, key) DO NOTHING
    RETURNING id
)"""
        return sql, {**{f"cache_{name}": value for name, value in values.items()}, "cache_now": now}

    def insert_row(self, storage_path: str) -> CachedAudio:
        """The entry for a file written by write_file(); concurrent stores of one key keep one entry."""
        try:
            with transaction.atomic():
                return CachedAudio.objects.create(**self.row_values(storage_path))
        except IntegrityError:
            return CachedAudio.objects.for_tenant(self.tenant_id).get(key=self.key)


def cached_audio_store(*, tenant, **fields) -> CachedAudio:
    """Store audio under its key (file and row). Concurrent stores of the same key keep one entry.

    `fields`: CacheDraft's, but tenant_id."""
    return CacheDraft(tenant_id=getattr(tenant, "pk", tenant), **fields).store()
