import math

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path, register_converter
from django.utils.translation import gettext
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView

from accounts.backends import login_retry_after
from chatsite.health import healthz, metrics
from chatsite.pwa import urlpatterns as pwa_urls
from files.views import file_download, file_thumbnail
from notifications.views import unsubscribe


class IdConverter:
    """Ids in URLs: at most 15 digits, so nothing overflows a 64-bit column (< 2^53)."""

    regex = "[0-9]{1,15}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

def admin_login(request: HttpRequest) -> HttpResponse:
    """Django admin's login behind the login throttle (accounts.throttle), as the API's is."""
    response = admin.site.login(request)
    wait = login_retry_after(request)
    if wait:
        return HttpResponse(
            gettext("Too many failed logins for this username; try again later."), status=429, content_type="text/plain", headers={"Retry-After": str(math.ceil(wait))}
        )
    return response


urlpatterns = [
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("healthz/", healthz),
    path("metrics", metrics),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/", include("accounts.urls")),
    path("api/", include("workspace_chat.urls")),
    path("api/", include("messagepal.urls")),
    path("api/", include("notifications.urls")),
    path("api/", include("search.urls")),
    path("api/", include("files.urls")),
    re_path(r"^files/thumbnails/(?P<file_id>[A-Za-z0-9_-]{1,32})\.(?P<ext>png|jpg)$", file_thumbnail),
    path("files/<str:file_id>/<str:name>", file_download),
    path("notifications/unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
    # The header's language picker (Django's set_language: POST, CSRF) and the
    # JavaScript modules' translations, a script of this site (the CSP allows it).
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    *pwa_urls,
    path("", include("chatsite.pages")),
]


def _json_or_html(request, status: int, message: str, html_view):
    from django.http import JsonResponse

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return html_view()


def handler500(request):
    from django.views.defaults import server_error

    return _json_or_html(request, 500, gettext("Server error."), lambda: server_error(request))


def handler404(request, exception=None):
    from django.views.defaults import page_not_found

    return _json_or_html(request, 404, gettext("Not found."), lambda: page_not_found(request, exception))


def csrf_failure(request, reason=""):
    from django.views.csrf import csrf_failure as django_csrf_failure

    return _json_or_html(request, 403, gettext("CSRF check failed: fetch /api/auth/csrf/ and send the X-CSRFToken header."), lambda: django_csrf_failure(request, reason))
