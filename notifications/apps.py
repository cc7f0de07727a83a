from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications.online import users_seen_refresh
        from realtime.hub import on_maintenance

        on_maintenance(users_seen_refresh)
