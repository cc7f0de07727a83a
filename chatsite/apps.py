from django.apps import AppConfig


class ChatsiteConfig(AppConfig):
    """The project package as an app: its system checks and its `runserver`."""

    name = "chatsite"
    verbose_name = "Chat site"

    def ready(self) -> None:
        from chatsite import checks  # noqa: F401  (registers the system checks)
