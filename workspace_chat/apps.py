from django.apps import AppConfig


class WorkspaceChatConfig(AppConfig):
    name = "workspace_chat"
    verbose_name = "Workspace chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messagestore import moderation
        from messagestore.streams import CHANNEL_PREFIX, channel_of
        from workspace_chat.services import message_moderate

        moderation.register(
            CHANNEL_PREFIX, lambda stream, message_id, action, actor_id: message_moderate(
                channel_id=channel_of(stream), message_id=message_id, action=action, actor_id=actor_id
            )
        )
