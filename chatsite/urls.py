from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView

from chatcore.api import healthz


class IdConverter:
    """Ids in URLs: at most 15 digits, so nothing overflows a 64-bit column (< 2^53)."""

    regex = "[0-9]{1,15}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("healthz/", healthz),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/", include("accounts.urls")),
    path("api/", include("workspace_chat.urls")),
    path("", include("chatsite.pages")),
]
