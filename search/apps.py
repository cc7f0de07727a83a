from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Message search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messagestore.listeners import on_write
        from search.index import index_write

        on_write(index_write)
