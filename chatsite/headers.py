"""Security headers Django does not set itself, on every answer: a
Content-Security-Policy that lets pages load only this site's own scripts,
styles, images (and data:/blob: images), service worker and web app manifest
(chatsite/pwa.py), open only this site's WebSockets,
and be framed by nobody; and a Permissions-Policy that turns off the device
features the chat never uses. The UI is written for them (no inline script
or style; tests/e2e/test_browser.py fails on any CSP violation)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data: blob:; worker-src 'self'; manifest-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
