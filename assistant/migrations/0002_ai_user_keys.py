"""The assistant's account gets its name keys (accounts.names) when it was
created after accounts' 0002 added them: historical models do not run
User.save(), which fills them."""

from django.db import migrations

from accounts import names


def fill_keys(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(username_key=""):
        User.objects.filter(pk=user.pk).update(username_key=names.name_key(user.username), username_look_alike=names.look_alike_key(user.username))


class Migration(migrations.Migration):
    dependencies = [("assistant", "0001_ai_user"), ("accounts", "0002_username_keys")]
    operations = [migrations.RunPython(fill_keys, migrations.RunPython.noop)]
