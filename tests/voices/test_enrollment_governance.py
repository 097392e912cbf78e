"""Enrollment is work: one per voice at a time, a concurrent-job slot, a daily plan limit, usage.

The API calls are real; the enrollment actor's body runs here, synchronously (a real worker runs
it in test_worker_flow.py). Enrollment clones with a tiny random-weight XTTS: real weights cannot
be fetched here, and the tiny one computes real latents in well under a second.
"""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from analytics.models import EnrollmentUsage, UsageRecord
from synthesis.engines import registry
from synthesis.engines.registry import loaded_engine
from tenants.models import TenantQuota
from tests.tenants.factories import TenantFactory
from voices.enrollment import voice_profile_enroll_execute
from voices.enrollment_jobs import enrollment_take, voice_enrollments_recover_all_tenants
from voices.models import VoiceEnrollment, VoiceProfile, VoiceReference

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_xtts_dir(tmp_path_factory):
    from tests.synthesis import tiny_models

    folder = tmp_path_factory.mktemp("xtts")
    tiny_models.build_xtts(folder)
    return folder


@pytest.fixture(autouse=True)
def xtts(settings, tiny_xtts_dir):
    settings.PARLA_MODEL_DIR = tiny_xtts_dir
    settings.PARLA_ENGINES = ["piper", "kokoro", "xtts"]
    registry.reset_engines()
    yield
    registry.reset_engines()


def _upload(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("narrator.wav", data)


def _create(client, speech_wav, name: str = "Clone"):
    return client.post("/api/v1/voices", {"name": name, "engine": "xtts", "references": [_upload(speech_wav)]},
                       format="multipart")


def _add(client, voice_id: int, speech_wav):
    return client.post(f"/api/v1/voices/{voice_id}/references", {"references": [_upload(speech_wav)]},
                       format="multipart")


def _run(enrollment: VoiceEnrollment) -> None:
    """What a worker does with the message sent for `enrollment`."""
    voice_profile_enroll_execute(tenant_id=enrollment.tenant_id, profile_id=enrollment.profile_id,
                                 enrollment_id=enrollment.pk)


def _slots_in_use(tenant) -> int:
    return TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight


def _enrollments(tenant) -> list[VoiceEnrollment]:
    return list(VoiceEnrollment.objects.for_tenant(tenant).order_by("generation"))


def test_voice_enrollment_newer_request_supersedes_the_queued_one(api_client_for, speech_wav):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    voice_id = _create(client, speech_wav).json()["id"]
    added = _add(client, voice_id, speech_wav)  # before any worker took the first enrollment

    first, second = _enrollments(tenant)
    _run(first)  # the first message is still delivered: it must not run
    _run(second)
    _run(second)  # redelivered: nothing more

    first.refresh_from_db()
    second.refresh_from_db()
    profile = VoiceProfile.objects.for_tenant(tenant).get()
    assert added.status_code == 201
    assert (first.status, first.attempts, first.holds_slot) == ("superseded", 0, False)
    assert (second.status, second.attempts, second.holds_slot) == ("succeeded", 1, False)
    assert (profile.status, profile.enrollment_generation) == ("ready", 2)
    assert "-g2a1." in profile.conditioning_path and default_storage.exists(profile.conditioning_path)
    assert list(EnrollmentUsage.objects.for_tenant(tenant).values_list("enrollment_id", flat=True)) == [second.pk]
    assert _slots_in_use(tenant) == 0


def test_voice_enrollment_superseded_while_running_keeps_the_newer_result(api_client_for, speech_wav, monkeypatch):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    voice_id = _create(client, speech_wav).json()["id"]
    engine = loaded_engine("xtts")
    compute = engine.compute_conditioning
    during_first_run = {}

    def newer_request_arrives(paths):
        # While the first enrollment runs, the tenant adds a recording and another worker picks
        # up the newer message at once.
        during_first_run["added"] = _add(client, voice_id, speech_wav).status_code
        newer = _enrollments(tenant)[-1]
        _run(newer)
        newer.refresh_from_db()
        during_first_run["newer_status"] = newer.status
        return compute(paths)

    monkeypatch.setattr(engine, "compute_conditioning", newer_request_arrives)
    first = _enrollments(tenant)[0]
    _run(first)
    monkeypatch.setattr(engine, "compute_conditioning", compute)
    profile_after_first = VoiceProfile.objects.for_tenant(tenant).get()
    second = _enrollments(tenant)[1]
    _run(second)  # the message the first run handed on when it ended

    first.refresh_from_db()
    second.refresh_from_db()
    profile = VoiceProfile.objects.for_tenant(tenant).get()
    assert during_first_run == {"added": 201, "newer_status": "queued"}  # never two at once
    assert profile_after_first.status == "enrolling" and profile_after_first.conditioning_path == ""
    assert (first.status, second.status) == ("superseded", "succeeded")
    assert profile.status == "ready" and "-g2a1." in profile.conditioning_path
    assert not default_storage.exists(profile.conditioning_path.replace("-g2a1.", "-g1a1."))  # discarded
    outcomes = dict(EnrollmentUsage.objects.for_tenant(tenant).values_list("enrollment_id", "outcome"))
    assert outcomes == {first.pk: "superseded", second.pk: "succeeded"}
    assert _slots_in_use(tenant) == 0


def test_voice_enrollment_needs_a_free_job_slot(api_client_for, speech_wav):
    tenant = TenantFactory(plan__concurrent_jobs=1)
    client = api_client_for(tenant)
    job = client.post("/api/v1/jobs", {"text": "Hello there."}, format="json").json()  # queued: holds the slot

    refused = _create(client, speech_wav)
    cancelled = client.delete(f"/api/v1/jobs/{job['id']}")
    created = _create(client, speech_wav)
    job_while_enrolling = client.post("/api/v1/jobs", {"text": "Hello there."}, format="json")
    slots_while_enrolling = _slots_in_use(tenant)
    _run(_enrollments(tenant)[0])
    job_after = client.post("/api/v1/jobs", {"text": "Hello there."}, format="json")

    assert (refused.status_code, refused.json()["code"]) == (429, "concurrency_limit_exceeded")
    assert set(refused.json()) == {"code", "message", "extra"} and refused["Retry-After"]
    assert cancelled.status_code in (200, 204) and created.status_code == 201
    assert (job_while_enrolling.status_code, job_while_enrolling.json()["code"]) == (429, "concurrency_limit_exceeded")
    assert slots_while_enrolling == 1
    assert VoiceProfile.objects.for_tenant(tenant).get().status == "ready"
    assert job_after.status_code == 202
    # The refused request stored and queued nothing.
    assert VoiceProfile.objects.for_tenant(tenant).count() == 1
    assert VoiceReference.objects.for_tenant(tenant).count() == 1
    assert len(_enrollments(tenant)) == 1


def test_voice_enrollment_refused_past_the_plans_enrollments_a_day(api_client_for, speech_wav,
                                                                    django_capture_on_commit_callbacks):
    tenant = TenantFactory(plan__enrollments_per_day=2)
    client = api_client_for(tenant)
    voice_id = _create(client, speech_wav).json()["id"]
    _add(client, voice_id, speech_wav)  # the second start today (it supersedes the first: both count)
    profile_before = VoiceProfile.objects.for_tenant(tenant).get()

    with django_capture_on_commit_callbacks() as callbacks:
        refused_add = _add(client, voice_id, speech_wav)
        refused_create = _create(client, speech_wav, name="Another")

    for refused in (refused_add, refused_create):
        assert refused.status_code == 403
        body = refused.json()
        assert set(body) == {"code", "message", "extra"}
        assert body["code"] == "plan_limit_reached"
        assert (body["extra"]["limit_name"], body["extra"]["limit"], body["extra"]["used"]) == (
            "enrollments_per_day", 2, 2)
        assert int(refused["Retry-After"]) <= 86_400
    assert callbacks == []  # nothing queued
    assert VoiceProfile.objects.for_tenant(tenant).count() == 1
    assert VoiceReference.objects.for_tenant(tenant).count() == 2
    assert VoiceProfile.objects.for_tenant(tenant).get().enrollment_generation == profile_before.enrollment_generation
    assert len(_enrollments(tenant)) == 2
    assert len(default_storage.listdir(f"tenants/{tenant.pk}/voices/{voice_id}/references")[1]) == 2


def test_voice_enrollment_daily_count_survives_deleting_the_voice(api_client_for, speech_wav):
    tenant = TenantFactory(plan__enrollments_per_day=1)
    client = api_client_for(tenant)
    voice_id = _create(client, speech_wav).json()["id"]

    deleted = client.delete(f"/api/v1/voices/{voice_id}")
    again = _create(client, speech_wav)

    assert deleted.status_code == 204
    assert (again.status_code, again.json()["extra"]["limit_name"]) == (403, "enrollments_per_day")
    (enrollment,) = _enrollments(tenant)
    assert (enrollment.status, enrollment.profile_id, enrollment.holds_slot) == ("cancelled", None, False)
    assert _slots_in_use(tenant) == 0


def test_voice_enrollment_appears_in_usage_with_its_processing_seconds(api_client_for, speech_wav):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    _create(client, speech_wav)

    _run(_enrollments(tenant)[0])
    usage = client.get("/api/v1/usage").json()

    record = EnrollmentUsage.objects.for_tenant(tenant).get()
    assert (record.outcome, record.engine, record.kind, record.attempts) == ("succeeded", "xtts", "cloned", 1)
    assert record.processing_seconds > 0
    assert record.api_key_id == client.api_key.pk
    assert usage["enrollments"]["totals"] == {
        "key": None, "label": "Total", "enrollments": 1, "succeeded": 1, "failed": 0,
        "processing_seconds": round(record.processing_seconds, 3),
    }
    assert [row["enrollments"] for row in usage["enrollments"]["rows"]] == [1]
    # Never billed as characters: no synthesis row, nothing in the character totals.
    assert not UsageRecord.objects.for_tenant(tenant).exists()
    assert (usage["totals"]["requests"], usage["totals"]["characters_billed"]) == (0, 0)
    assert usage["quota"]["characters_used"] == 0


def test_voice_enrollment_usage_groups_by_voice(api_client_for, speech_wav):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    voice_id = _create(client, speech_wav).json()["id"]
    _run(_enrollments(tenant)[0])

    rows = client.get("/api/v1/usage", {"group_by": "voice"}).json()["enrollments"]["rows"]

    assert [(row["key"], row["enrollments"]) for row in rows] == [(f"xtts:profile-{voice_id}", 1)]


def test_voice_enrollment_of_a_dead_worker_is_run_again_and_frees_its_slot_once(api_client_for, speech_wav,
                                                                                 monkeypatch):
    tenant = TenantFactory()
    _create(api_client_for(tenant), speech_wav)
    enrollment = _enrollments(tenant)[0]
    # A worker took it and died (killed, host gone): it sent no heartbeat since.
    monkeypatch.setattr("config.runtime.presence.current_worker_id", lambda: "host:4242:dead")
    enrollment_take(tenant_id=tenant.pk, profile_id=enrollment.profile_id, enrollment_id=enrollment.pk)
    monkeypatch.undo()

    recovered = voice_enrollments_recover_all_tenants(alive_worker_ids={"host:1:alive"}, broker_lost=False)
    enrollment.refresh_from_db()
    requeued = (enrollment.status, enrollment.holds_slot, _slots_in_use(tenant))
    _run(enrollment)  # the message the upkeep sent again
    _run(enrollment)  # and the dead worker's own message, redelivered

    enrollment.refresh_from_db()
    assert recovered == 1
    assert requeued == ("queued", True, 1)
    assert (enrollment.status, enrollment.attempts, enrollment.holds_slot) == ("succeeded", 2, False)
    assert _slots_in_use(tenant) == 0
    assert EnrollmentUsage.objects.for_tenant(tenant).count() == 1


def test_voice_enrollment_of_a_dead_worker_out_of_attempts_fails_and_frees_its_slot(api_client_for, speech_wav,
                                                                                     monkeypatch):
    tenant = TenantFactory()
    _create(api_client_for(tenant), speech_wav)
    enrollment = _enrollments(tenant)[0]
    VoiceEnrollment.objects.for_tenant(tenant).filter(pk=enrollment.pk).update(attempts=2)
    monkeypatch.setattr("config.runtime.presence.current_worker_id", lambda: "host:4242:dead")
    enrollment_take(tenant_id=tenant.pk, profile_id=enrollment.profile_id, enrollment_id=enrollment.pk)
    monkeypatch.undo()

    voice_enrollments_recover_all_tenants(alive_worker_ids=set(), broker_lost=False)
    voice_enrollments_recover_all_tenants(alive_worker_ids=set(), broker_lost=False)  # next minute: no change

    enrollment.refresh_from_db()
    profile = VoiceProfile.objects.for_tenant(tenant).get()
    assert (enrollment.status, enrollment.holds_slot) == ("failed", False)
    assert profile.status == "failed" and "stopped too often" in profile.error
    assert _slots_in_use(tenant) == 0
    assert EnrollmentUsage.objects.for_tenant(tenant).get().outcome == "failed"


def test_voice_enrollment_recovery_leaves_a_live_workers_enrollment_alone(api_client_for, speech_wav, monkeypatch):
    tenant = TenantFactory()
    _create(api_client_for(tenant), speech_wav)
    enrollment = _enrollments(tenant)[0]
    monkeypatch.setattr("config.runtime.presence.current_worker_id", lambda: "host:1:alive")
    enrollment_take(tenant_id=tenant.pk, profile_id=enrollment.profile_id, enrollment_id=enrollment.pk)
    monkeypatch.undo()

    recovered = voice_enrollments_recover_all_tenants(alive_worker_ids={"host:1:alive"}, broker_lost=False)

    enrollment.refresh_from_db()
    assert recovered == 0
    assert (enrollment.status, enrollment.holds_slot) == ("running", True)
