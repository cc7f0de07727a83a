from django.contrib import admin

from workspace_chat.models import Channel, ChannelMembership, Report, Workspace, WorkspaceMembership


class WorkspaceMembershipInline(admin.TabularInline):
    model = WorkspaceMembership
    extra = 0
    autocomplete_fields = ["user"]


class ChannelMembershipInline(admin.TabularInline):
    model = ChannelMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_by", "created_at")
    search_fields = ("name",)
    inlines = [WorkspaceMembershipInline]


@admin.register(WorkspaceMembership)
class WorkspaceMembershipAdmin(admin.ModelAdmin):
    list_display = ("workspace", "user", "role", "joined_at")
    list_filter = ("role", "workspace")
    search_fields = ("user__username", "workspace__name")
    autocomplete_fields = ["user", "workspace"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "workspace", "kind", "is_private", "created_at")
    list_filter = ("kind", "is_private", "workspace")
    search_fields = ("name", "workspace__name")
    inlines = [ChannelMembershipInline]
    exclude = ("dm_key",)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Reports with the reported text as it was; read-only (acting on a
    report is the moderators' actions on the message)."""

    list_display = ("id", "workspace", "channel", "message_id", "author_id", "reporter", "status", "created_at")
    list_filter = ("status", "workspace")
    search_fields = ("content", "reason", "=message_id")
    readonly_fields = [f.name for f in Report._meta.fields]

    def has_add_permission(self, request):
        return False
