from django.apps import AppConfig


class MessagepalConfig(AppConfig):
    name = "messagepal"
    verbose_name = "MessagePal"
    default_auto_field = "django.db.models.BigAutoField"
