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

from analytics.models import UsageRecord, UsageRollupPending
from synthesis import cache
from synthesis.models import CachedAudio, SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tenants.quotas import job_admit, quota_reserve, usage_period_current
from tests.tenants.factories import TenantFactory

ROOT = Path(__file__).resolve().parent.parent

# Statements that read or write tenant rows: (module, function) -> the test below that runs the
# statement with another tenant's id.
TENANT_STATEMENTS: dict[tuple[str, str], str] = {
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
