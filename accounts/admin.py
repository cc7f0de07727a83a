from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import AuditEntry, User
from accounts.services import user_deactivate


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "display_name", "email", "is_active", "is_staff", "is_ai", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "is_ai")
    search_fields = ("username", "display_name", "email")
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Chat", {"fields": ("display_name", "is_ai")}))
    actions = ["deactivate"]

    @admin.action(description="Deactivate selected users (they can no longer log in)")
    def deactivate(self, request, queryset):
        for user in queryset:
            user_deactivate(user=user, actor=request.user)
        self.message_user(request, f"{len(queryset)} user(s) deactivated; their open connections were closed.")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            user_deactivate(user=obj, actor=request.user)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Every moderation action; read-only: the log is not edited."""

    list_display = ("created_at", "action", "actor", "target", "workspace_id", "reason")
    list_filter = ("action", "workspace_id")
    search_fields = ("target", "reason", "actor__username")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
