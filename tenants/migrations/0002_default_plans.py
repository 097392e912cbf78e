from django.db import migrations

MB = 1024 * 1024

PLANS = [
    # slug, name, chars/month, rpm, concurrent jobs, voices, cloned, batch items, upload, request chars
    ("free", "Free", 20_000, 10, 1, 3, 1, 50, 10 * MB, 5_000),
    ("starter", "Starter", 1_000_000, 60, 4, 20, 5, 1_000, 10 * MB, 50_000),
    ("pro", "Pro", 10_000_000, 300, 16, 100, 25, 10_000, 25 * MB, 100_000),
    ("enterprise", "Enterprise", 200_000_000, 1_200, 64, 1_000, 200, 50_000, 50 * MB, 200_000),
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for slug, name, chars, rpm, jobs, voices, cloned, items, upload, request_chars in PLANS:
        Plan.objects.update_or_create(
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


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
