"""Production settings (check --deploy), CSRF on every unsafe method, and
what the logs must never contain."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import get_resolver

ROOT = Path(__file__).resolve().parents[2]
KEY = "k" * 20 + "-a-long-random-production-key-for-the-deploy-check-0123456789"


def deploy_check(**env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, env=full, capture_output=True, text=True
    )


def warning_ids(output: str) -> set[str]:
    return set(re.findall(r"\(([a-z]+\.W\d+)\)", output))


def test_production_settings_pass_check_deploy_with_no_warning():
    result = deploy_check(DJANGO_DEBUG="0", DJANGO_HTTPS="1", DJANGO_SECRET_KEY=KEY, DJANGO_ALLOWED_HOSTS="chat.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_plain_http_deploy_warns_only_about_tls():
    """Without DJANGO_HTTPS the site serves plain HTTP (loopback, or TLS ended
    by a proxy that does not forward X-Forwarded-Proto): the four TLS warnings
    are expected and explained in README.md; nothing else."""
    result = deploy_check(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=KEY)
    assert warning_ids(result.stdout + result.stderr) == {"security.W004", "security.W008", "security.W012", "security.W016"}


def test_development_key_is_flagged_in_production():
    result = deploy_check(DJANGO_DEBUG="0", DJANGO_HTTPS="1")
    assert "chatsite.W001" in warning_ids(result.stdout + result.stderr)


def test_https_settings_cookies_and_headers(settings):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='chatsite.settings';django.setup();"
            "from django.conf import settings as s;"
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_HTTPONLY)",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "0", "DJANGO_HTTPS": "1", "DJANGO_SECRET_KEY": KEY},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["True", "True", "True", "31536000", "('HTTP_X_FORWARDED_PROTO',", "'https')", "True"]


@pytest.mark.django_db
def test_security_headers(client):
    response = client.get("/api/auth/csrf/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "HttpOnly" not in str(response.cookies["csrftoken"])  # the page's JS must read it
    assert response.cookies["csrftoken"]["samesite"] == "Lax"


def unsafe_api_routes() -> list[tuple[str, str]]:
    """(method, path template) of every unsafe API endpoint, from the URLconf."""
    routes = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, prefix + str(p.pattern))
                continue
            view = getattr(p.callback, "view_class", None) or getattr(p.callback, "cls", None)
            if view is None:
                continue
            for method in ("post", "put", "patch", "delete"):
                if hasattr(view, method):
                    routes.append((method.upper(), prefix + str(p.pattern)))

    walk(get_resolver().url_patterns)
    return [r for r in routes if r[1].startswith("api/")]


@pytest.mark.django_db
def test_every_unsafe_method_needs_the_csrf_token(school):
    from messagepal.protocol import conversation_id

    routes = unsafe_api_routes()
    assert len(routes) >= 9, routes  # register, login, logout, workspace, member, channel, DM, grade, MessagePal send
    values = {
        "<id:workspace_id>": str(school.workspace.id),
        "<id:channel_id>": str(school.general.id),
        "<id:message_id>": "1",
        "<str:emoji>": "%F0%9F%91%8D",
        "<id:user_id>": str(school.bob.id),
        "<str:code>": "some-code",
        "<id:report_id>": "1",
        "<str:conversation_id>": conversation_id(school.alice.id, school.bob.id),
    }
    client = Client(enforce_csrf_checks=True)
    client.force_login(school.alice)
    for method, template in routes:
        path = "/" + template
        for placeholder, value in values.items():
            path = path.replace(placeholder, value)
        assert "<" not in path, path
        response = client.generic(method, path, data="{}", content_type="application/json")
        assert response.status_code == 403, (method, path, response.status_code)
        assert "CSRF" in response.content.decode(), (method, path)
