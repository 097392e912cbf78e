from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("synthesis", "0002_synthesisjob"),
    ]

    operations = [
        migrations.AddField(
            model_name="synthesisjob",
            name="worker_id",
            field=models.CharField(blank=True, max_length=200),
        ),
    ]
