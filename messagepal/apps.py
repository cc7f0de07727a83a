from django.apps import AppConfig


class MessagepalConfig(AppConfig):
    name = "messagepal"
    verbose_name = "MessagePal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.selectors import user_search_scope_register
        from messagepal.selectors import reachable_users
        from messagepal.services import pal_message_moderate
        from messagestore import moderation
        from messagestore.streams import CONVERSATION_PREFIX

        moderation.register(
            CONVERSATION_PREFIX,
            lambda stream, message_id, action, actor_id: pal_message_moderate(
                conversation_id=stream, message_number=message_id, action=action, actor_id=actor_id
            ),
        )
        # The user search finds whom MessagePal connects (one rule).
        user_search_scope_register(reachable_users)
