import dataclasses

import pytest
from django.core.files.storage import default_storage

from synthesis.cache import audio_cache_key, cached_audio_get, cached_audio_read, cached_audio_store
from synthesis.models import CachedAudio
from synthesis.types import Prosody, Segment
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


@dataclasses.dataclass(frozen=True)
class Options:
    format: str = "wav"
    sample_rate: int = 24000
    speed: float = 1.0


BASE = {
    "tenant_id": 1,
    "voice_id": "piper:en_US-joe-medium",
    "engine": "piper",
    "model_version": "piper-1.8.0:abc",
    "segments": [Segment("Hello."), Segment("World.", pause_after_ms=300)],
    "audio_options": Options(),
}


def test_audio_cache_key_is_stable_for_identical_requests():
    assert audio_cache_key(**BASE) == audio_cache_key(**{**BASE, "segments": list(BASE["segments"])})


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_id": 2},
        {"voice_id": "kokoro:jf_alpha"},
        {"engine": "kokoro"},
        {"model_version": "piper-1.9.0:abc"},
        {"conditioning_digest": "d1"},
        {"segments": [Segment("Hello."), Segment("World.")]},
        {"segments": [Segment("Hello."), Segment("World.", pause_after_ms=300, prosody=Prosody(rate=1.2))]},
        {"segments": [Segment("Hello!"), Segment("World.", pause_after_ms=300)]},
        {"audio_options": Options(format="mp3")},
        {"audio_options": Options(sample_rate=48000)},
        {"audio_options": Options(speed=1.5)},
    ],
)
def test_audio_cache_key_changes_with_every_input(change):
    assert audio_cache_key(**BASE) != audio_cache_key(**{**BASE, **change})


def _store(tenant, key="k" * 64, data=b"RIFF....audio"):
    return cached_audio_store(
        tenant=tenant, key=key, data=data, extension="wav", voice_id="piper:x", engine="piper",
        model_version="v", format="wav", content_type="audio/wav", sample_rate=22050, duration_seconds=1.5,
    )


def test_cached_audio_round_trip_counts_hits():
    tenant = TenantFactory()
    _store(tenant)

    entry = cached_audio_get(tenant=tenant, key="k" * 64)

    assert cached_audio_read(entry=entry) == b"RIFF....audio"
    assert CachedAudio.objects.for_tenant(tenant).get().hits == 1
    assert entry.storage_path.startswith(f"tenants/{tenant.pk}/cache/")


def test_cached_audio_is_per_tenant():
    mine, theirs = TenantFactory(), TenantFactory()
    _store(theirs)

    assert cached_audio_get(tenant=mine, key="k" * 64) is None


def test_cached_audio_with_a_missing_file_is_a_miss_and_is_dropped():
    tenant = TenantFactory()
    entry = _store(tenant)
    default_storage.delete(entry.storage_path)

    assert cached_audio_get(tenant=tenant, key="k" * 64) is None
    assert not CachedAudio.objects.for_tenant(tenant).exists()


def test_cached_audio_store_twice_keeps_one_entry():
    tenant = TenantFactory()

    first, second = _store(tenant), _store(tenant, data=b"RIFF....again")

    assert first.pk == second.pk
    assert CachedAudio.objects.for_tenant(tenant).count() == 1
