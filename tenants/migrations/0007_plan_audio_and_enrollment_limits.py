import django.core.validators
from django.db import migrations, models

from tenants.plans import plans_fill_new_limits

NEW_LIMITS = ["max_audio_seconds_per_request", "enrollments_per_day"]


def fill_default_plans(apps, schema_editor):
    plans_fill_new_limits(plan_model=apps.get_model("tenants", "Plan"), fields=NEW_LIMITS)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0006_plan_prices")]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="max_audio_seconds_per_request",
            field=models.PositiveIntegerField(
                default=3600, validators=[django.core.validators.MinValueValidator(1)],
                help_text="Longest audio one request may produce, pauses included (seconds).",
            ),
        ),
        migrations.AddField(
            model_name="plan",
            name="enrollments_per_day",
            field=models.PositiveIntegerField(
                default=20, help_text="Voice enrollments a tenant may start per day (UTC)."
            ),
        ),
        migrations.RunPython(fill_default_plans, migrations.RunPython.noop),
    ]
