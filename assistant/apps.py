from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"
    verbose_name = "@AI assistant"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assistant.services import schedule_answer, wants_answer
        from workspace_chat.hooks import on_message_created

        on_message_created(schedule_answer, wanted=wants_answer)
