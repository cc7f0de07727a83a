from django.apps import AppConfig


class WorkspaceChatConfig(AppConfig):
    name = "workspace_chat"
    verbose_name = "Workspace chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messagestore import moderation
        from workspace_chat.services import message_moderate

        moderation.register(
            "ch:", lambda stream, message_id, action: message_moderate(channel_id=int(stream[3:]), message_id=message_id, action=action)
        )
