"""The installable web app: the manifest (`/manifest.webmanifest`), the
service worker (`/sw.js`, served from the root so that its scope is the whole
site) and the offline page it shows when a navigation fails (`/offline/`).

The service worker precaches the app shell, which is only this project's own
static files (CSS, JS, images) and the offline page; it never stores API
answers, WebSocket traffic, uploaded files or any page with messages in it
(docs/ui.md). Its cache is named after a hash of the shell's content, so a
deploy that changes a static file changes `/sw.js` byte for byte: the browser
installs the new worker, which fills a new cache and deletes the old ones."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import path
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

SHELL_DIRS = ("css", "js", "img")
THEME_COLOR = "#2f5bea"
BACKGROUND_COLOR = "#f5f6f8"
NO_CACHE = "no-cache"


def _shell_files() -> list[Path]:
    """The project's own static files (not the admin's or DRF's)."""
    root = Path(settings.BASE_DIR) / "static"
    return sorted(p for d in SHELL_DIRS for p in (root / d).rglob("*") if p.is_file() and not p.name.startswith("."))


def _compute_shell() -> tuple[str, list[str]]:
    root = Path(settings.BASE_DIR) / "static"
    digest = hashlib.sha256()
    urls = []
    for file in _shell_files():
        name = file.relative_to(root).as_posix()
        digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
        urls.append(static(name))
    # The worker's own code and the offline page are part of the version too.
    for template in ("pwa/sw.js", "pwa/offline.html"):
        digest.update((Path(settings.BASE_DIR) / "templates" / template).read_bytes())
    return digest.hexdigest()[:16], urls


_cached_shell = lru_cache(maxsize=1)(_compute_shell)


def shell() -> tuple[str, list[str]]:
    """(version, static URLs to precache). Computed once per process; in
    DEBUG on every call, so an edited file reaches the browser."""
    return _compute_shell() if settings.DEBUG else _cached_shell()


@require_safe
def manifest(request: HttpRequest) -> HttpResponse:
    data = {
        "name": "School Chat",
        "short_name": "Chat",
        "description": "Your school chat: workspaces, channels and MessagePal.",
        "id": "/",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {"src": static("img/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": static("img/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": static("img/icon-maskable-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }
    response = JsonResponse(data, content_type="application/manifest+json")
    response["Cache-Control"] = "public, max-age=3600"
    return response


@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    version, urls = shell()
    precache = [*urls, "/offline/"]
    body = render_to_string("pwa/sw.js", {"version": version, "precache": mark_safe(json.dumps(precache))})
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    # Always revalidated: a deploy must reach the browser's update check.
    response["Cache-Control"] = NO_CACHE
    response["Service-Worker-Allowed"] = "/"
    return response


@require_safe
def offline(request: HttpRequest) -> HttpResponse:
    """The same for everyone (no user, no messages): the worker caches it."""
    response = HttpResponse(render_to_string("pwa/offline.html"))
    response["Cache-Control"] = NO_CACHE
    return response


urlpatterns = [
    path("manifest.webmanifest", manifest, name="manifest"),
    path("sw.js", service_worker, name="service-worker"),
    path("offline/", offline, name="offline"),
]
