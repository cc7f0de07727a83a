"""Moderation of messages in Django admin: the SQL store's table (find,
hide, show again, delete), and a view over the store interface that does the
same for a channel or conversation on any store (Cassandra, MongoDB). Every
action goes through the services, so members hear of it and it is audited."""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from messagestore.models import Message, ReadPointer

PAGE = 50
SEARCH_DEPTH = 500  # newest messages a search reads
_STREAM = re.compile(r"^(ch:\d{1,16}|conv_\d{1,16}_\d{1,16})$")


def _stream(value: str) -> str | None:
    value = value.strip()
    if value.isdigit():
        value = f"ch:{value}"
    return value if _STREAM.match(value) else None


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

    def get_urls(self):
        return [path("store/", self.admin_site.admin_view(self.store_view), name="chatcore_message_store"), *super().get_urls()]

    def store_view(self, request):
        """A stream's messages as the configured store holds them."""
        from messagestore import get_store
        from messagestore.moderation import message_moderate

        if request.method == "POST":
            stream = _stream(request.POST.get("stream", ""))
            action = request.POST.get("action", "")
            try:
                message_id = int(request.POST.get("message_id", ""))
            except ValueError:
                message_id = 0
            if stream is None or action not in ("hide", "unhide", "delete") or message_id <= 0:
                messages.error(request, "Choose a message and an action.")
            elif message_moderate(stream=stream, message_id=message_id, action=action, actor_id=request.user.id):
                messages.success(request, f"Message {message_id}: {action} done.")
            else:
                messages.warning(request, f"Message {message_id}: nothing to {action}.")
            return redirect(f"{request.path}?stream={stream or ''}")
        raw = request.GET.get("stream", "").strip()
        q = request.GET.get("q", "").strip()
        context = {**self.admin_site.each_context(request), "stream": raw, "q": q, "messages_shown": None, "store_name": get_store().name}
        if raw:
            stream = _stream(raw)
            try:
                before = int(request.GET["before"]) if request.GET.get("before") else None
            except ValueError:
                before = None
            if stream is None:
                context["error"] = "Not a stream: use ch:ID, a channel id, or conv_A_B."
            else:
                page, more = get_store().moderation_page(stream, before=before, limit=SEARCH_DEPTH if q else PAGE)
                shown = [m for m in page if q.casefold() in m.content.casefold()] if q else page
                context.update(stream=stream, messages_shown=list(reversed(shown)), scanned=len(page), older=page[0].id if more and page else None)
        return TemplateResponse(request, "admin/chatcore/store_messages.html", context)

    def changelist_view(self, request, extra_context=None):
        extra = {"store_view_url": "store/", **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def delete_model(self, request, obj):
        from messagestore.moderation import message_moderate

        message_moderate(stream=obj.stream, message_id=obj.message_id, action="delete", actor_id=request.user.id)


@admin.register(ReadPointer)
class ReadPointerAdmin(admin.ModelAdmin):
    list_display = ("stream", "user_id", "message_id", "read_at")
    search_fields = ("stream", "=user_id")
