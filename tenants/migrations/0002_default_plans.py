from django.db import migrations

from tenants.plans import plans_ensure_defaults


def create_plans(apps, schema_editor):
    plans_ensure_defaults(plan_model=apps.get_model("tenants", "Plan"))


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
