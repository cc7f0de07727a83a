"""System checks of our own, shown by `manage.py check --deploy`."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def dev_secret_key(app_configs, **kwargs):
    if not settings.DEBUG and settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        return [
            Warning(
                "DJANGO_SECRET_KEY is not set: the built-in development key is public.",
                hint="Set DJANGO_SECRET_KEY to a long random value in production.",
                id="chatsite.W001",
            )
        ]
    return []
