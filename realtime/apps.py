from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """No models: the app registers what each process's hub does in its
    maintenance round (realtime.hub.on_maintenance)."""

    name = "realtime"
    verbose_name = "Realtime transport"

    def ready(self) -> None:
        from realtime.connections import connections_refresh
        from realtime.hub import on_maintenance
        from realtime.sessions import close_ended_sessions

        on_maintenance(connections_refresh)
        on_maintenance(close_ended_sessions)
