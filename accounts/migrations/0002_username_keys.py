"""Usernames compared without regard to case or Unicode compatibility forms
(accounts.names): the keys, filled in for existing users. Names that were
already the same name under the new rule (e.g. `Carol` and `carol`, which
the old case-insensitive check let through under a race) keep working: the
later ones get their id appended to their key."""

from django.db import migrations, models

from accounts import names


def fill_keys(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    seen = set()
    for user in User.objects.order_by("id"):
        key = names.name_key(user.username)
        if key in seen:
            key = f"{key}#{user.id}"
        seen.add(key)
        User.objects.filter(pk=user.pk).update(username_key=key, username_look_alike=names.look_alike_key(user.username))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.AddField("user", "username_key", models.CharField(editable=False, max_length=150, null=True)),
        migrations.AddField("user", "username_look_alike", models.CharField(db_index=True, editable=False, max_length=150, default=""), preserve_default=False),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField("user", "username_key", models.CharField(editable=False, max_length=150, unique=True)),
    ]
