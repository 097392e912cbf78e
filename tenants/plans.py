"""The plans a fresh installation starts with. Operators edit or add plans in the admin."""

MB = 1024 * 1024

DEFAULT_PLANS = [
    # slug, name, chars/month, rpm, concurrent jobs, voices, cloned, batch items, upload, request chars
    ("free", "Free", 20_000, 10, 1, 3, 1, 50, 10 * MB, 5_000),
    ("starter", "Starter", 1_000_000, 60, 4, 20, 5, 1_000, 10 * MB, 50_000),
    ("pro", "Pro", 10_000_000, 300, 16, 100, 25, 10_000, 25 * MB, 100_000),
    ("enterprise", "Enterprise", 200_000_000, 1_200, 64, 1_000, 200, 50_000, 50 * MB, 200_000),
]


def plans_ensure_defaults(*, plan_model) -> None:
    """Create the default plans that are missing; never overwrite an operator's edits."""
    for slug, name, chars, rpm, jobs, voices, cloned, items, upload, request_chars in DEFAULT_PLANS:
        plan_model.objects.get_or_create(
            slug=slug,
            defaults=dict(
                name=name,
                monthly_characters=chars,
                requests_per_minute=rpm,
                concurrent_jobs=jobs,
                voices=voices,
                cloned_voices=cloned,
                batch_items=items,
                upload_bytes=upload,
                request_characters=request_chars,
            ),
        )
