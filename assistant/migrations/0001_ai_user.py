"""The assistant's account: a real user shown as "AI Assistant" that cannot log in."""

from django.db import migrations

AI_USERNAME = "ai-assistant"


def create_ai_user(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    from django.contrib.auth.hashers import make_password

    User.objects.get_or_create(
        username=AI_USERNAME,
        defaults={"display_name": "AI Assistant", "is_ai": True, "password": make_password(None)},
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_ai_user, migrations.RunPython.noop)]
