"""Moderation of the SQL message store in Django admin: find, hide, delete.
Hide and delete go through the services so members hear `message_deleted`."""

from django.contrib import admin

from messagestore.models import Message, ReadPointer


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("message_id", "stream", "author_id", "short_content", "message_type", "is_ai", "is_pinned", "hidden", "deleted_at", "deleted_by", "created_at")
    list_filter = ("hidden", ("deleted_at", admin.EmptyFieldListFilter), "is_ai", "is_pinned", "message_type")
    search_fields = ("content", "stream", "=author_id", "=message_id")
    ordering = ("-message_id",)
    # Hiding goes through the actions (the services tell members); a field
    # edited by hand would tell nobody.
    readonly_fields = [f.name for f in Message._meta.fields]
    actions = ["hide_messages", "unhide_messages", "delete_messages"]
    list_per_page = 50

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        return obj.content if len(obj.content) <= 80 else obj.content[:77] + "..."

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request):
        return False


    def _moderate(self, request, queryset, action: str) -> None:
        from messagestore.moderation import message_moderate

        done = sum(message_moderate(stream=m.stream, message_id=m.message_id, action=action, actor_id=request.user.id) for m in queryset)
        self.message_user(request, f"{done} message(s) {action}d.".replace("hided", "hidden").replace("unhidden", "shown again"))

    @admin.action(description="Hide selected messages from everyone")
    def hide_messages(self, request, queryset):
        self._moderate(request, queryset, "hide")

    @admin.action(description="Show selected hidden messages again")
    def unhide_messages(self, request, queryset):
        self._moderate(request, queryset, "unhide")

    @admin.action(description="Delete selected messages")
    def delete_messages(self, request, queryset):
        self._moderate(request, queryset, "delete")

    def delete_model(self, request, obj):
        from messagestore.moderation import message_moderate

        message_moderate(stream=obj.stream, message_id=obj.message_id, action="delete", actor_id=request.user.id)


@admin.register(ReadPointer)
class ReadPointerAdmin(admin.ModelAdmin):
    list_display = ("stream", "user_id", "message_id", "read_at")
    search_fields = ("stream", "=user_id")
