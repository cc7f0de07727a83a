"""The installable app's server side (chatsite/pwa.py): the manifest, the
service worker at the site's root and the offline page; what the worker
precaches is the static shell only (tests/e2e/test_browser_pwa.py runs it in
Chromium)."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from chatsite import pwa
from chatsite.headers import CONTENT_SECURITY_POLICY


def precache_of(body: str) -> list[str]:
    match = re.search(r"^const PRECACHE = (\[.*\]);$", body, re.M)
    assert match, body[:500]
    return json.loads(match.group(1))


def test_the_manifest_names_the_app_and_its_icons():
    answer = Client().get("/manifest.webmanifest")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/manifest+json"
    data = json.loads(answer.content)
    assert data["name"] and data["short_name"] == "Chat"
    assert data["start_url"] == "/" and data["display"] == "standalone"
    assert re.fullmatch(r"#[0-9a-f]{6}", data["theme_color"]) and re.fullmatch(r"#[0-9a-f]{6}", data["background_color"])
    sizes = {(icon["sizes"], icon["purpose"]) for icon in data["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in data["icons"]:
        assert icon["type"] == "image/png"
        assert Client().get(icon["src"]).status_code == 200, icon


@pytest.mark.django_db
def test_the_service_worker_is_served_from_the_root_and_never_cached():
    answer = Client().get("/sw.js")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer["Service-Worker-Allowed"] == "/"
    assert answer["Cache-Control"] == "no-cache"
    assert "worker-src 'self'" in answer["Content-Security-Policy"]
    body = answer.content.decode()
    version, urls = pwa.shell()
    assert f'const VERSION = "{version}";' in body and re.fullmatch(r"[0-9a-f]{16}", version)
    precache = precache_of(body)
    assert precache == [*urls, "/offline/"]
    # The shell: this site's CSS, JS and images, and nothing with data in it.
    assert {"/static/css/app.css", "/static/js/chat.js", "/static/js/pwa.js", "/static/img/icon-192.png"} <= set(precache)
    for url in precache:
        assert url == "/offline/" or re.fullmatch(r"/static/(css|js|img)/[\w.-]+", url), url


def test_the_version_follows_the_static_files_content(settings, tmp_path):
    (tmp_path / "static" / "js").mkdir(parents=True)
    (tmp_path / "templates" / "pwa").mkdir(parents=True)
    for template in ("sw.js", "offline.html"):
        (tmp_path / "templates" / "pwa" / template).write_text(template)
    script = tmp_path / "static" / "js" / "a.js"
    script.write_text("one")
    settings.BASE_DIR = tmp_path
    settings.DEBUG = True
    first, urls = pwa.shell()
    assert urls == ["/static/js/a.js"]
    assert pwa.shell()[0] == first
    script.write_text("two")
    assert pwa.shell()[0] != first


def test_the_offline_page_is_the_same_for_everyone():
    answer = Client().get("/offline/")
    assert answer.status_code == 200
    text = answer.content.decode()
    assert "offline, reconnecting" in text
    assert "<script" in text and "/static/js/offline.js" in text and "<script>" not in text
    assert answer["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_every_page_links_the_manifest_and_registers_the_worker():
    text = Client().get("/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in text
    assert 'src="/static/js/pwa.js"' in text
    assert '<meta name="theme-color"' in text
