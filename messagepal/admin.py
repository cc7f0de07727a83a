"""MessagePal in Django admin: conversations, and their messages inline from
the message store (moderators hide/delete them under Message store -> Messages);
blocks, read-only (people make and lift them themselves)."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from messagepal.models import Block, Conversation
from messagestore import get_store


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "user_low", "user_high", "last_message_at", "created_at")
    search_fields = ("id", "user_low__username", "user_high__username")
    readonly_fields = ("id", "user_low", "user_high", "created_at", "last_message_id", "last_message_at", "recent_messages")
    ordering = ("-last_message_at",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="Recent messages (newest 50)")
    def recent_messages(self, obj: Conversation) -> str:
        messages, _ = get_store().page(obj.id, limit=50)
        if not messages:
            return "-"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", ((m.id, m.author_id, m.created_at, m.content) for m in messages))
        return format_html("<table><tr><th>id</th><th>sender</th><th>at</th><th>content</th></tr>{}</table>", rows)


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ("blocker", "blocked", "created_at")
    search_fields = ("blocker__username", "blocked__username")
    readonly_fields = ("blocker", "blocked", "created_at")
    ordering = ("-created_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
