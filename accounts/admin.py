from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "display_name", "email", "is_active", "is_staff", "is_ai", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "is_ai")
    search_fields = ("username", "display_name", "email")
    fieldsets = BaseUserAdmin.fieldsets + (("Chat", {"fields": ("display_name", "is_ai")}),)
    actions = ["deactivate"]

    @admin.action(description="Deactivate selected users (they can no longer log in)")
    def deactivate(self, request, queryset):
        updated = queryset.update(is_active=False)
        self.message_user(request, f"{updated} user(s) deactivated.")
