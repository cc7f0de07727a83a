from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import User
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
            user_deactivate(user=user)
        self.message_user(request, f"{len(queryset)} user(s) deactivated; their open connections were closed.")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            user_deactivate(user=obj)
