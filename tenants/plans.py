"""The plans a fresh installation starts with. Operators edit or add plans in the admin."""

MB = 1024 * 1024

HOUR = 3_600

DEFAULT_PLANS = [
    # slug, name, chars/month, rpm, concurrent jobs, voices, cloned, batch items, upload, request chars,
    # audio seconds per request, enrollments per day
    ("free", "Free", 20_000, 10, 1, 3, 1, 50, 10 * MB, 5_000, 10 * 60, 5),
    ("starter", "Starter", 1_000_000, 60, 4, 20, 5, 1_000, 10 * MB, 50_000, HOUR, 20),
    ("pro", "Pro", 10_000_000, 300, 16, 100, 25, 10_000, 25 * MB, 100_000, HOUR, 100),
    ("enterprise", "Enterprise", 200_000_000, 1_200, 64, 1_000, 200, 50_000, 50 * MB, 200_000, HOUR, 500),
]


def plans_ensure_defaults(*, plan_model) -> None:
    """Create the default plans that are missing; never overwrite an operator's edits."""
    for slug, defaults in _default_plan_rows(plan_model):
        plan_model.objects.get_or_create(slug=slug, defaults=defaults)


def plans_fill_new_limits(*, plan_model, fields: list[str]) -> None:
    """Give the default plans their values of limit fields that a migration just added."""
    for slug, defaults in _default_plan_rows(plan_model):
        plan_model.objects.filter(slug=slug).update(**{name: defaults[name] for name in fields})


def _default_plan_rows(plan_model):
    """(slug, field values) of each default plan, limited to the fields plan_model has: a
    migration passes the historical model, which may predate later limits."""
    known = {field.name for field in plan_model._meta.get_fields()}
    for slug, name, chars, rpm, jobs, voices, cloned, items, upload, request_chars, audio_seconds, enrollments in (
        DEFAULT_PLANS
    ):
        values = {
            "name": name, "monthly_characters": chars, "requests_per_minute": rpm, "concurrent_jobs": jobs,
            "voices": voices, "cloned_voices": cloned, "batch_items": items, "upload_bytes": upload,
            "request_characters": request_chars, "max_audio_seconds_per_request": audio_seconds,
            "enrollments_per_day": enrollments,
        }
        yield slug, {field: value for field, value in values.items() if field in known}
