"""Every raw SQL statement in the app code names its tenant, and these tests show it.

The ORM's reads and writes are held to for_tenant() by the scan in test_tenant_isolation.py;
a raw statement escapes that scan, so each one is listed here. A statement that touches tenant
rows is run with another tenant's id while the first tenant has rows it could wrongly match
(same job id, same period, same cache entry), and must touch and return nothing of the first
tenant. A positive control runs the same statement with the right tenant, so a statement that
silently stopped running cannot pass. A raw statement added to the code without a line here
fails test_every_raw_statement_in_the_app_code_is_listed.
"""

import ast
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import UsageRecord, UsageRollupPending
from synthesis import cache
from synthesis.cache import CacheDraft
from synthesis.jobs import statements
from synthesis.jobs.events import JobCharge
from synthesis.models import CachedAudio, SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tenants.quotas import job_admit, quota_reserve, usage_period_current
from tests.tenants.factories import TenantFactory

ROOT = Path(__file__).resolve().parent.parent

# Statements that read or write tenant rows: (module, function) -> the test below that runs the
# statement with another tenant's id.
TENANT_STATEMENTS: dict[tuple[str, str], str] = {
    ("synthesis/jobs/statements.py", "job_take"): "test_job_take_with_another_tenants_id_takes_nothing",
    ("synthesis/jobs/statements.py", "job_settle"): "test_job_settle_with_another_tenants_id_settles_nothing",
    ("synthesis/cache.py", "_count_hit"): "test_cache_hit_count_with_another_tenants_id_counts_nothing",
    ("tenants/quotas.py", "_reserve_in_one_statement"):
        "test_quota_reserve_for_another_tenant_holds_nothing_of_the_first",
    ("tenants/quotas.py", "job_admit"): "test_job_admit_for_another_tenant_takes_nothing_of_the_first",
}
# Statements that touch no tenant rows, or cross tenants by design: why.
OTHER_STATEMENTS: dict[tuple[str, str], str] = {
    ("synthesis/jobs/commits.py", "job_transaction"): "SET LOCAL synchronous_commit: a setting, no rows",
    ("analytics/selectors.py", "_snapshot.__enter__"): "SET TRANSACTION ISOLATION LEVEL: a setting, no rows",
    ("config/health.py", "_check_database"): "SELECT 1: no rows",
    ("analytics/operators.py", "_percentiles_all_tenants"):
        "the operators' report (admin only): engine timings across tenants by design",
}
SCANNED_SKIP = {"tests", ".venv", "docker", "bench", "var", "test-artifacts", "static", "templates"}
CURSOR_CALLS = {"execute", "executemany", "callproc", "copy_expert"}  # with arguments: a statement
QUERYSET_CALLS = {"raw", "extra"}
EXPRESSIONS = {"RawSQL", "RunSQL"}


def _raw_statements_in(tree: ast.AST) -> list[str]:
    """The enclosing function (dotted, with its class) of every raw statement in a module."""
    found: list[str] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = (*scope, node.name)
        if isinstance(node, ast.Call):
            func = node.func
            attribute = func.attr if isinstance(func, ast.Attribute) else None
            name = func.id if isinstance(func, ast.Name) else attribute
            if (
                (attribute in CURSOR_CALLS and (node.args or node.keywords))
                or attribute in QUERYSET_CALLS
                or name in EXPRESSIONS
            ):
                found.append(".".join(scope) or "<module>")
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, ())
    return found


def _raw_statements() -> Counter:
    found: Counter = Counter()
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SCANNED_SKIP or rel.parts[0].startswith(".") or "migrations" in rel.parts:
            continue
        for function in _raw_statements_in(ast.parse(path.read_text(), filename=str(rel))):
            found[(rel.as_posix(), function)] += 1
    return found


# --- Meta-tests ---------------------------------------------------------------------------------


def test_every_raw_statement_in_the_app_code_is_listed():
    found = _raw_statements()
    listed = set(TENANT_STATEMENTS) | set(OTHER_STATEMENTS)

    assert set(found) - listed == set(), "a new raw statement: list it above, with a test if it touches tenant rows"
    assert listed - set(found) == set(), "a listed statement is gone: drop or move its line"
    # One statement per function, so that a second one cannot hide behind a listed first.
    assert {key: count for key, count in found.items() if count > 1} == {}


def test_every_tenant_statement_has_its_cross_tenant_test():
    missing = [name for name in TENANT_STATEMENTS.values() if not callable(globals().get(name))]

    assert missing == []
    assert set(TENANT_STATEMENTS).isdisjoint(OTHER_STATEMENTS)


def test_the_raw_statement_scan_catches_each_kind():
    source = '''
def a(cursor):
    cursor.execute("UPDATE t SET x = 1")
def b():
    return Model.objects.raw("SELECT * FROM t")
class C:
    def d(self):
        return qs.annotate(x=RawSQL("SELECT 1", []))
def e(pipe):
    pipe.execute()  # a Redis pipeline: no statement
'''

    assert _raw_statements_in(ast.parse(source)) == ["a", "b", "C.d"]


# --- Each statement with another tenant's id ---------------------------------------------------

TENANT_TABLES = (SynthesisJob, QuotaReservation, UsagePeriod, TenantQuota, UsageRecord, UsageRollupPending,
                 CachedAudio)


@pytest.fixture
def postgresql(db):
    # The statements run on PostgreSQL only (SQLite takes their ORM twins): on another database
    # these tests would pass by testing the ORM path instead, so they refuse to.
    if connection.vendor != "postgresql":
        pytest.fail("The raw statements are PostgreSQL's; run these tests on PostgreSQL.")


def _rows(tenant) -> dict[str, list[dict]]:
    """Every row the raw statements could touch, of one tenant."""
    return {
        model.__name__: list(model.objects.for_tenant(tenant).order_by("pk").values())
        for model in TENANT_TABLES
    }


def _running_job(tenant, *, characters: int = 12) -> SynthesisJob:
    """A job as the web tier leaves it once a worker took it: a slot and a hold of its own."""
    reservation = job_admit(tenant=tenant, characters=characters)
    return SynthesisJob.objects.create(
        tenant=tenant, mode=SynthesisJob.Mode.ASYNC, status=SynthesisJob.Status.RUNNING, voice_id="piper:x",
        engine="piper", queue_name="synthesis-cpu", text="x" * characters, characters=characters,
        reservation=reservation, holds_slot=True, attempts=1,
    )


def _queued_job(tenant) -> SynthesisJob:
    return SynthesisJob.objects.create(
        tenant=tenant, mode=SynthesisJob.Mode.ASYNC, status=SynthesisJob.Status.QUEUED, voice_id="piper:x",
        engine="piper", queue_name="synthesis-cpu", text="hello", characters=5,
    )


def _settle(*, tenant_id: int, job_id: int, cache_key: str):
    result = {"storage_path": f"tenants/{tenant_id}/jobs/{job_id}.wav", "format": "wav",
              "content_type": "audio/wav", "sample_rate": 22050, "audio_seconds": 1.0, "size_bytes": 44,
              "cache_hit": False, "processing_seconds": 0.1, "model_version": "v1"}
    draft = CacheDraft(tenant_id=tenant_id, key=cache_key, data=b"x" * 44, extension="wav", voice_id="piper:x",
                       engine="piper", model_version="v1", format="wav", content_type="audio/wav",
                       sample_rate=22050, duration_seconds=1.0)
    job = SynthesisJob.objects.get(pk=job_id)  # whoever's it is: the statement decides by tenant_id
    charge = JobCharge(job=job, characters_billed=12, cached=False, processing_seconds=0.1, model_version="v1",
                       at=timezone.now())
    return statements.job_settle(tenant_id=tenant_id, job_id=job_id, now=timezone.now(), result=result,
                                 charge=charge, cache=(draft, f"tenants/{tenant_id}/cache/{cache_key}.wav"))


def test_job_take_with_another_tenants_id_takes_nothing(postgresql):
    mine, theirs = TenantFactory(), TenantFactory()
    my_job, their_job = _queued_job(mine), _queued_job(theirs)
    before = _rows(mine)

    foreign = statements.job_take(tenant_id=theirs.pk, job_id=my_job.pk, worker_id="w", now=timezone.now(),
                                  max_attempts=3)
    own = statements.job_take(tenant_id=theirs.pk, job_id=their_job.pk, worker_id="w", now=timezone.now(),
                              max_attempts=3)

    assert foreign is None
    assert _rows(mine) == before
    assert (own.pk, own.tenant_id, own.status) == (their_job.pk, theirs.pk, "running")  # the control


def test_job_settle_with_another_tenants_id_settles_nothing(postgresql):
    mine, theirs = TenantFactory(), TenantFactory()
    my_job, their_job = _running_job(mine), _running_job(theirs)
    mine_before, theirs_before = _rows(mine), _rows(theirs)

    foreign = _settle(tenant_id=theirs.pk, job_id=my_job.pk, cache_key="a" * 64)

    assert foreign is None
    assert _rows(mine) == mine_before
    assert _rows(theirs) == theirs_before  # nothing written in their name either
    own = _settle(tenant_id=theirs.pk, job_id=their_job.pk, cache_key="b" * 64)
    assert own.succeeded  # the control: job, hold, period, slot, record, marker and cache entry
    assert UsageRecord.objects.for_tenant(theirs).filter(job_id=their_job.pk).exists()
    assert not UsageRecord.objects.filter(job_id=my_job.pk).exists()
    assert _rows(mine) == mine_before


def _cache_entry(tenant, key: str) -> CachedAudio:
    return CachedAudio.objects.create(
        tenant=tenant, key=key, storage_path=f"tenants/{tenant.pk}/cache/{key}.wav", voice_id="piper:x",
        engine="piper", model_version="v1", format="wav", content_type="audio/wav", sample_rate=22050,
        duration_seconds=1.0, size_bytes=44,
    )


def test_cache_hit_count_with_another_tenants_id_counts_nothing(postgresql):
    mine, theirs = TenantFactory(), TenantFactory()
    my_entry, their_entry = _cache_entry(mine, "c" * 64), _cache_entry(theirs, "c" * 64)
    before = _rows(mine)
    # The statement takes the entry's id and tenant id; here they disagree, as a bug upstream
    # (an entry read without for_tenant) would make them.
    mismatched = CachedAudio(pk=my_entry.pk, tenant_id=theirs.pk)

    with CaptureQueriesContext(connection) as captured:
        cache._count_hit(mismatched)
    cache._count_hit(their_entry)

    assert [query["sql"].split(None, 1)[0] for query in captured.captured_queries] == ["UPDATE"]
    assert _rows(mine) == before
    assert CachedAudio.objects.for_tenant(theirs).get(pk=their_entry.pk).hits == 1  # the control


def _one_statement_ran(captured: CaptureQueriesContext) -> bool:
    return any(query["sql"].lstrip().startswith("WITH") for query in captured.captured_queries)


def test_quota_reserve_for_another_tenant_holds_nothing_of_the_first(postgresql):
    mine, theirs = TenantFactory(), TenantFactory()
    # The same month: my period row is one the statement could wrongly match.
    assert usage_period_current(tenant=mine).period_start == usage_period_current(tenant=theirs).period_start
    quota_reserve(tenant=mine, characters=7)
    before = _rows(mine)

    with CaptureQueriesContext(connection) as captured:
        reservation = quota_reserve(tenant=theirs, characters=30)

    assert _one_statement_ran(captured)
    assert _rows(mine) == before
    assert QuotaReservation.objects.for_tenant(theirs).get(pk=reservation.pk).period.tenant_id == theirs.pk
    assert UsagePeriod.objects.for_tenant(theirs).get().characters_reserved == 30  # the control


def test_job_admit_for_another_tenant_takes_nothing_of_the_first(postgresql):
    mine, theirs = TenantFactory(), TenantFactory()
    job_admit(tenant=mine, characters=5)  # my quota and period rows exist and hold something
    job_admit(tenant=theirs, characters=5)
    before = _rows(mine)

    with CaptureQueriesContext(connection) as captured:
        reservation = job_admit(tenant=theirs, characters=9)

    assert _one_statement_ran(captured)
    assert _rows(mine) == before
    assert reservation.tenant_id == theirs.pk
    assert TenantQuota.objects.for_tenant(theirs).get().jobs_in_flight == 2  # the control
    assert UsagePeriod.objects.for_tenant(theirs).get().characters_reserved == 14
