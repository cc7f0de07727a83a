from django.apps import AppConfig


class PresenceConfig(AppConfig):
    name = "presence"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from presence.services import connections_refresh
        from realtime.hub import on_maintenance

        on_maintenance(connections_refresh)
