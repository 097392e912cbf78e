from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("synthesis", "0005_synthesisjob_created_by")]

    operations = [
        migrations.AddField(
            model_name="synthesisjob",
            name="worker_deaths",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="synthesisjob",
            name="audio_seconds_limit",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
