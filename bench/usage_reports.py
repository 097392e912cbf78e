"""Usage reports on a large ledger: how long each report takes for one big tenant.

Method:
- A fresh PostgreSQL database (--database, dropped at the end unless --keep), migrated;
  settings `config.settings.local` with that DATABASE_URL and no Redis (nothing is enqueued:
  the rollups are built in this process, as the rollup actor or `manage.py usage_rollup` would).
- Seeded with --rows ledger rows (default 1,000,000) by COPY: one finished SynthesisJob and one
  UsageRecord each, spread over --tenants tenants (one "big" tenant in Europe/Berlin holds
  --big-share of them, default 40 %), the 365 days up to yesterday (uniformly, at random moments),
  12 voices on 3 engines, 5 API keys per tenant plus dashboard jobs (no key, 20 %); 15 % are
  cache hits (billed 0). Plus 2 % as many UsageFailure rows (failed jobs). ANALYZE afterwards.
- Rollups: built from the ledger by `usage_rollup_rebuild` per tenant (the full rebuild of
  `manage.py usage_rollup`), timed; then --tail new ledger rows (default 5,000) for the big tenant
  written with their pending rows, as the synthesis worker writes them.
- Reports: `analytics.selectors.usage_report` (what GET /api/v1/usage, the CSV and the dashboard
  call) for the big tenant, each group_by (day, month, voice, engine, key) over the last full
  month and over the last 365 days: first with the --tail rows still pending (the report adds
  them from the ledger), then after the incremental rollup run has taken them (timed too).
  Median of --repeats calls after one warm-up call; min and max shown too. Also, for reference,
  the ledger-only path a report falls back to right after a tenant's time zone changed.

Command: .venv/bin/python bench/usage_reports.py [--rows 1000000] [--repeats 7] [--json out.json]
"""

import argparse
import datetime as dt
import functools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
VOICES = [
    ("piper:en_US-joe-medium", "piper"), ("piper:en_GB-alba-medium", "piper"), ("piper:de_DE-thorsten-medium", "piper"),
    ("piper:fr_FR-siwis-medium", "piper"), ("piper:es_ES-davefx-medium", "piper"), ("kokoro:af_heart", "kokoro"),
    ("kokoro:am_michael", "kokoro"), ("kokoro:bf_emma", "kokoro"), ("kokoro:bm_george", "kokoro"),
    ("xtts:profile-1", "xtts"), ("xtts:profile-2", "xtts"), ("xtts:profile-3", "xtts"),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--big-share", type=float, default=0.4)
    parser.add_argument("--tail", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--server", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default="parla_bench_usage")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--json", type=Path, help="Write the measurements here as well.")
    return parser.parse_args()


def admin_connection(server: str):
    import psycopg

    parsed = urlparse(server)
    return psycopg.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                           password=parsed.password, dbname="postgres", autocommit=True)


def create_database(args) -> None:
    with admin_connection(args.server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')


def drop_database(args) -> None:
    from django.db import connections

    connections.close_all()
    with admin_connection(args.server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def setup_django(args) -> None:
    os.environ["DATABASE_URL"] = f"{args.server.rstrip('/')}/{args.database}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["PARLA_EMBEDDED_WORKER"] = "False"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("PARLA_VAR_DIR", tempfile.mkdtemp(prefix="parla-bench-usage-"))
    os.environ.setdefault("PARLA_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _columns(model, known_names: set[str]) -> list:
    """Every concrete column; those not given get NULL or the field's default (so the seed
    keeps working when the model gains a column)."""
    columns = []
    for field in model._meta.concrete_fields:
        if field.column in known_names:
            columns.append((field.column, None))
        elif field.null:
            columns.append((field.column, ("const", None)))
        elif field.has_default():
            default = field.get_default()
            value = json.dumps(default) if isinstance(default, dict | list) else default
            columns.append((field.column, ("const", value)))
        elif getattr(field, "blank", False) and field.get_internal_type() in ("CharField", "TextField"):
            columns.append((field.column, ("const", "")))
        else:
            raise SystemExit(f"{model.__name__}.{field.name} needs a value in the seed")
    return columns


def seed(args, rng: random.Random) -> dict:
    from django.db import connection

    from analytics.models import UsageFailure, UsageRecord
    from synthesis.models import SynthesisJob
    from tenants.models import Plan
    from tenants.services import api_key_create, tenant_create

    plan = Plan.objects.order_by("-monthly_characters").first()
    tenants = []
    for index in range(args.tenants):
        tenant = tenant_create(name=f"Bench tenant {index}", slug=f"bench-{index}", plan=plan,
                               time_zone="Europe/Berlin" if index == 0 else rng.choice(
                                   ["UTC", "America/New_York", "Asia/Tokyo", "Europe/London"]))
        keys = [api_key_create(tenant=tenant, actor=None, name=f"key-{k}", scopes=["usage"]).api_key.pk
                for k in range(5)]
        tenants.append((tenant, keys))
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_moment = today - dt.timedelta(days=365)
    span_seconds = 365 * 86400

    job_known = {"id", "tenant_id", "mode", "status", "api_key_id", "voice_id", "engine", "queue_name", "characters",
                 "audio_seconds", "cache_hit", "processing_seconds", "created_at", "finished_at", "attempts",
                 "format", "content_type", "error_code"}
    record_known = {"id", "tenant_id", "job_id", "api_key_id", "voice_id", "engine", "model_version", "mode",
                    "characters", "characters_billed", "audio_seconds", "cached", "processing_seconds", "created_at"}
    failure_known = {"id", "tenant_id", "job_id", "api_key_id", "voice_id", "engine", "mode", "error_code",
                     "created_at"}
    job_columns = _columns(SynthesisJob, job_known)
    record_columns = _columns(UsageRecord, record_known)
    failure_columns = _columns(UsageFailure, failure_known)

    def generate():
        """The seeded rows, the same on every call (COPY needs two passes: jobs, then records)."""
        local = random.Random(args.rows)
        for job_id in range(1, args.rows + failures + 1):
            tenant, keys = tenants[0] if local.random() < args.big_share else tenants[
                1 + local.randrange(len(tenants) - 1)]
            key = None if local.random() < 0.2 else local.choice(keys)
            voice, engine = local.choice(VOICES)
            at = first_moment + dt.timedelta(seconds=local.randrange(span_seconds))
            chars = local.randrange(20, 3000)
            audio = round(chars / 15 * local.uniform(0.8, 1.2), 3)
            cached = local.random() < 0.15
            seconds = round(0.01 if cached else audio * local.uniform(0.05, 0.3), 3)
            yield job_id, tenant.pk, key, voice, engine, chars, audio, cached, seconds, at

    def job_row(job_id, tenant_id, key, voice, engine, chars, audio, cached, seconds, at, status):
        values = {"id": job_id, "tenant_id": tenant_id, "mode": "async", "status": status, "api_key_id": key,
                  "voice_id": voice, "engine": engine, "queue_name": "synthesis-cpu", "characters": chars,
                  "audio_seconds": audio if status == "succeeded" else None, "cache_hit": cached,
                  "processing_seconds": seconds if status == "succeeded" else None, "created_at": at,
                  "finished_at": at, "attempts": 1, "format": "wav", "content_type": "audio/wav",
                  "error_code": "" if status == "succeeded" else "synthesis_failed"}
        return [values[name] if spec is None else spec[1] for name, spec in job_columns]

    started = time.perf_counter()
    failures = int(args.rows * 0.02)
    with connection.cursor() as cursor:
        raw = cursor.connection
        job_sql = f"COPY synthesis_synthesisjob ({', '.join(name for name, _ in job_columns)}) FROM STDIN"
        record_sql = f"COPY analytics_usagerecord ({', '.join(name for name, _ in record_columns)}) FROM STDIN"
        failure_sql = f"COPY analytics_usagefailure ({', '.join(name for name, _ in failure_columns)}) FROM STDIN"
        with raw.cursor().copy(job_sql) as copy:
            for job_id, tenant_id, key, voice, engine, chars, audio, cached, seconds, at in generate():
                status = "succeeded" if job_id <= args.rows else "failed"
                copy.write_row(job_row(job_id, tenant_id, key, voice, engine, chars, audio, cached, seconds, at,
                                       status))
        rows = generate()
        with raw.cursor().copy(record_sql) as copy:
            for _, (job_id, tenant_id, key, voice, engine, chars, audio, cached, seconds, at) in zip(
                    range(args.rows), rows, strict=False):
                values = {"id": job_id, "tenant_id": tenant_id, "job_id": job_id, "api_key_id": key,
                          "voice_id": voice, "engine": engine, "model_version": f"{engine}-1", "mode": "async",
                          "characters": chars, "characters_billed": 0 if cached else chars, "audio_seconds": audio,
                          "cached": cached, "processing_seconds": seconds, "created_at": at}
                copy.write_row([values[name] if spec is None else spec[1] for name, spec in record_columns])
        with raw.cursor().copy(failure_sql) as copy:
            for number, (job_id, tenant_id, key, voice, engine, *_rest, at) in enumerate(rows, 1):
                values = {"id": number, "tenant_id": tenant_id, "job_id": job_id, "api_key_id": key,
                          "voice_id": voice, "engine": engine, "mode": "async", "error_code": "synthesis_failed",
                          "created_at": at}
                copy.write_row([values[name] if spec is None else spec[1] for name, spec in failure_columns])
        for table, last in (("synthesis_synthesisjob", args.rows + failures), ("analytics_usagerecord", args.rows),
                            ("analytics_usagefailure", failures)):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [last])
        cursor.execute("ANALYZE")
    seeded = time.perf_counter() - started
    big_rows = UsageRecord.objects.for_tenant(tenants[0][0]).count()
    return {"tenants": tenants, "seed_seconds": round(seeded, 1), "big_tenant_rows": big_rows,
            "failures": failures}


def build_rollups(tenants) -> float:
    from analytics.rollups import usage_rollup_rebuild

    started = time.perf_counter()
    for tenant, _ in tenants:
        usage_rollup_rebuild(tenant=tenant)
    return time.perf_counter() - started


def write_tail(args, tenant, keys, rng: random.Random) -> None:
    """New ledger rows of today, written as the worker writes them (with their pending rows)."""
    from analytics.services import usage_record_create
    from synthesis.models import SynthesisJob

    for _ in range(args.tail):
        voice, engine = rng.choice(VOICES)
        chars = rng.randrange(20, 3000)
        job = SynthesisJob.objects.create(tenant=tenant, mode="async", status="succeeded", voice_id=voice,
                                          engine=engine, queue_name="synthesis-cpu", characters=chars,
                                          audio_seconds=round(chars / 15, 3), api_key_id=rng.choice(keys),
                                          processing_seconds=0.5)
        usage_record_create(tenant=tenant, job=job, characters_billed=chars, cached=False, processing_seconds=0.5)


def time_call(function, repeats: int) -> dict:
    function()  # Warm-up.
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def time_reports(tenant, repeats: int) -> list[dict]:
    from analytics.selectors import GROUP_BY, month_bounds, tenant_today, usage_report

    today = tenant_today(tenant=tenant)
    last_month = month_bounds(today.replace(day=1) - dt.timedelta(days=1))
    ranges = {"month": last_month, "year": (today - dt.timedelta(days=364), today)}
    results = []
    for range_name, (start, end) in ranges.items():
        for group_by in GROUP_BY:
            report = usage_report(tenant=tenant, start=start, end=end, group_by=group_by)
            timing = time_call(functools.partial(usage_report, tenant=tenant, start=start, end=end, group_by=group_by),
                               repeats)
            results.append({"range": range_name, "from": str(start), "to": str(end), "group_by": group_by,
                            "rows": len(report.rows), "requests": report.totals.requests, **timing})
    return results


def print_table(title: str, results: list[dict]) -> None:
    print(f"\n{title}\n")
    print("| range | group_by | rows | requests | median s | min s | max s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        print(f"| {result['range']} ({result['from']} – {result['to']}) | {result['group_by']} | {result['rows']} | "
              f"{result['requests']:,} | {result['median']:.3f} | {result['min']:.3f} | {result['max']:.3f} |")


def main() -> None:
    args = parse_args()
    rng = random.Random(20261122)
    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    create_database(args)
    try:
        setup_django(args)
        from django.db import connection

        from analytics.models import UsageDaily, UsageRollupPending
        from analytics.rollups import usage_rollup_run
        from analytics.selectors import usage_report

        seeded = seed(args, rng)
        big, big_keys = seeded["tenants"][0]
        print(f"seeded {args.rows:,} usage records and {seeded['failures']:,} failures in "
              f"{seeded['seed_seconds']} s; big tenant: {seeded['big_tenant_rows']:,} records")
        build_seconds = build_rollups(seeded["tenants"])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        daily_rows = UsageDaily.objects.for_tenant(big).count()
        print(f"rollups rebuilt from the ledger in {build_seconds:.1f} s; big tenant: {daily_rows:,} daily rows")

        write_tail(args, big, big_keys, rng)
        pending = UsageRollupPending.objects.for_tenant(big).count()
        with_tail = time_reports(big, args.repeats)
        print_table(f"Reports with {pending:,} ledger rows not yet rolled up (read from the ledger)", with_tail)

        started = time.perf_counter()
        added = usage_rollup_run(tenant_id=big.pk)
        incremental_seconds = time.perf_counter() - started
        print(f"\nincremental rollup run: {added:,} rows in {incremental_seconds:.2f} s")
        rolled = time_reports(big, args.repeats)
        print_table("Reports with everything rolled up", rolled)

        # A report right after a time-zone change reads the ledger alone until the next run.
        from analytics.models import UsageRollupState

        UsageRollupState.objects.for_tenant(big).update(time_zone="UTC")
        today = rolled[-1]["to"]
        start = rolled[-1]["from"]
        ledger_only = time_call(lambda: usage_report(tenant=big, start=dt.date.fromisoformat(start),
                                                     end=dt.date.fromisoformat(today), group_by="day"), 3)
        print(f"\nledger-only fallback, year by day: median {ledger_only['median']:.3f} s")
        print(f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
        if args.json:
            args.json.write_text(json.dumps({
                "rows": args.rows, "failures": seeded["failures"], "big_tenant_rows": seeded["big_tenant_rows"],
                "seed_seconds": seeded["seed_seconds"], "rollup_build_seconds": round(build_seconds, 2),
                "big_tenant_daily_rows": daily_rows, "tail_rows": pending,
                "incremental_seconds": round(incremental_seconds, 3), "with_tail": with_tail, "rolled": rolled,
                "ledger_only_year_by_day": ledger_only,
            }, indent=2))
    finally:
        if not args.keep:
            drop_database(args)


if __name__ == "__main__":
    main()
