"""Languages (issue 21; docs/i18n.md): English by default, Spanish from the
browser's Accept-Language or the header's picker; the JavaScript catalog
under the CSP; error messages for people translated with their codes and
field names unchanged; every msgid of the .po files translated and the
committed .mo files compiled from them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polib
import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import translation

from chatsite.headers import CONTENT_SECURITY_POLICY
from chatsite.routing import websocket_urlpatterns
from wire.i18n import language_from_scope

LOCALE = Path(settings.BASE_DIR) / "locale"
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%s|%d")


def page(client: Client, path: str = "/", **headers: str) -> str:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.status_code
    return answer.content.decode()


def html_lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, "no <html lang>"
    return match.group(1)


def test_the_browser_language_chooses_the_page_language():
    spanish = page(Client(), "/", **{"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert html_lang(spanish) == "es"
    for text in ("Iniciar sesión", "Nombre de usuario", "Contraseña", "Crear una cuenta", "Idioma"):
        assert text in spanish
    assert ">Log in<" not in spanish
    for accept in ("en-GB,en;q=0.9", "fr-FR,fr;q=0.9", ""):
        english = page(Client(), "/", **({"Accept-Language": accept} if accept else {}))
        assert html_lang(english) == "en", accept
        assert ">Log in<" in english and "Iniciar sesión" not in english


@pytest.mark.django_db
def test_the_picker_is_a_csrf_protected_post_that_sets_the_language_cookie():
    client = Client(enforce_csrf_checks=True)
    html = page(client, "/register/")
    form = re.search(r'<form class="language-form" action="([^"]+)" method="post">(.*?)</form>', html, re.S)
    assert form and form.group(1) == "/i18n/setlang/"
    assert '<label for="language-select" class="visually-hidden">Language</label>' in form.group(2)
    assert 'name="csrfmiddlewaretoken"' in form.group(2)
    assert re.search(r'<option value="es" lang="es">Español</option>', form.group(2))
    assert client.post("/i18n/setlang/", {"language": "es", "next": "/register/"}).status_code == 403  # no token
    token = client.cookies["csrftoken"].value
    answer = client.post("/i18n/setlang/", {"language": "es", "next": "/register/", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and answer["Location"] == "/register/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "es"
    # The cookie wins over the browser's language, on every page.
    register = page(client, "/register/", **{"Accept-Language": "en"})
    assert html_lang(register) == "es" and "Crear cuenta" in register
    answer = client.post("/i18n/setlang/", {"language": "en", "next": "/", "csrfmiddlewaretoken": token})
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert html_lang(page(client, "/", **{"Accept-Language": "es"})) == "en"
    # An offsite `next` is not followed.
    answer = client.post("/i18n/setlang/", {"language": "es", "next": "https://evil.example/", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and not answer["Location"].startswith("https://evil.example")


def test_the_javascript_catalog_is_a_script_of_this_site_allowed_by_the_csp():
    html = page(Client(), "/", **{"Accept-Language": "es"})
    assert '<script src="/jsi18n/"></script>' in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], "an inline script (the CSP forbids them)"
    answer = Client().get("/jsi18n/", headers={"Accept-Language": "es"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/javascript")
    assert answer["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "script-src" not in CONTENT_SECURITY_POLICY
    text = answer.content.decode()
    assert "globals.interpolate" in text and '"Reintentar"' in text and '"Not sent"' in text
    english = Client().get("/jsi18n/", headers={"Accept-Language": "en"}).content.decode()
    assert "Reintentar" not in english


@pytest.mark.django_db
def test_api_errors_are_in_the_callers_language_with_the_same_codes_and_fields(make_user):
    make_user("ana", password="correct-horse-9")
    bad = {"username": "ana", "password": "wrong-password-1"}
    for language, expected in (("es", "Nombre de usuario o contraseña incorrectos."), ("en", "Invalid username or password.")):
        answer = Client().post("/api/auth/login/", json.dumps(bad), content_type="application/json", headers={"Accept-Language": language})
        assert answer.status_code == 400
        assert answer.json() == {"errors": {"non_field_errors": [expected]}}
    client = Client()
    client.force_login(make_user("beto"))
    spanish = client.get("/api/workspaces/999999/", headers={"Accept-Language": "es"})
    english = client.get("/api/workspaces/999999/", headers={"Accept-Language": "en"})
    assert spanish.status_code == english.status_code == 404
    assert english.json() == {"detail": "Workspace not found."}
    assert spanish.json() == {"detail": "Espacio de trabajo no encontrado."}
    # DRF's and Django's own messages follow too (their catalogs ship Spanish).
    short = client.post("/api/workspaces/", json.dumps({}), content_type="application/json", headers={"Accept-Language": "es"})
    assert short.status_code == 400 and list(short.json()["errors"]) == ["name"]
    assert short.json()["errors"]["name"] == ["Este campo es requerido."]


def test_a_connections_language_comes_from_the_cookie_then_accept_language():
    def scope(accept: str | None = None, cookie: str | None = None) -> dict:
        headers = [(b"accept-language", accept.encode())] if accept is not None else []
        return {"headers": headers, "cookies": {settings.LANGUAGE_COOKIE_NAME: cookie} if cookie else {}}

    assert language_from_scope(scope()) == "en"
    assert language_from_scope(scope("es-MX,es;q=0.9")) == "es"
    assert language_from_scope(scope("fr;q=1, es;q=0.5")) == "es"
    assert language_from_scope(scope("de, fr")) == "en"
    assert language_from_scope(scope("es", cookie="en")) == "en"
    assert language_from_scope(scope("en", cookie="es")) == "es"
    assert language_from_scope(scope("en", cookie="xx")) == "en"


@pytest.mark.django_db(transaction=True)
async def test_websocket_errors_are_in_the_connections_language(make_user):
    user = await database_sync_to_async(make_user)("carla")
    app = URLRouter(websocket_urlpatterns)
    cases = (
        (b"es-ES,es;q=0.9", "La trama no es JSON válido.", "El campo 'channelId' es obligatorio."),
        (b"en-US", "Frame is not valid JSON.", "Field 'channelId' is required."),
    )
    for accept, expected, missing in cases:
        comm = WebsocketCommunicator(app, "/ws/chat/", headers=[(b"accept-language", accept), (b"origin", b"http://testserver")])
        comm.scope["user"] = user
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from(2))["type"] == "connected"
        await comm.send_to(text_data="{not json")
        error = await comm.receive_json_from(2)
        assert error == {"type": "error", "code": "bad_request", "message": expected}
        # A message formatted with a value (an f-string) is translated through its template.
        await comm.send_json_to({"type": "join_channel", "requestId": "r0"})
        assert await comm.receive_json_from(2) == {"type": "error", "code": "bad_request", "message": missing, "requestId": "r0"}
        await comm.send_json_to({"type": "join_channel", "channelId": 999999, "requestId": "r1"})
        error = await comm.receive_json_from(2)
        assert error["type"] == "error" and error["code"] in ("forbidden", "not_found") and error["requestId"] == "r1"
        await comm.disconnect()


# -- the catalogs ---------------------------------------------------------------------


def catalogs() -> list[Path]:
    found = sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))
    assert {path.parent.parent.name for path in found} == {code for code, _name in settings.LANGUAGES if code != "en"}
    return found


@pytest.mark.parametrize("po_path", catalogs(), ids=lambda path: f"{path.parent.parent.name}-{path.stem}")
def test_every_msgid_is_translated_and_the_mo_is_compiled_from_the_po(po_path: Path):
    po = polib.pofile(str(po_path))
    assert len(po) > 100
    assert po.untranslated_entries() == [], [entry.msgid for entry in po.untranslated_entries()]
    assert po.fuzzy_entries() == [], [entry.msgid for entry in po.fuzzy_entries()]
    assert po.obsolete_entries() == []
    assert not po.metadata_is_fuzzy
    for entry in po:
        wanted = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        for text in entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]:
            assert sorted(PLACEHOLDER.findall(text)) == wanted or (entry.msgid_plural and sorted(set(PLACEHOLDER.findall(text))) == sorted(set(wanted))), (entry.msgid, text)
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path} is missing: run manage.py compilemessages"
    mo = polib.mofile(str(mo_path))

    def table(catalog) -> dict:
        return {(e.msgctxt, e.msgid): (e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in catalog if e.msgid}

    assert table(mo) == table(po), f"{mo_path} is older than its .po: run manage.py compilemessages"


def test_spanish_is_served_from_the_catalog():
    with translation.override("es"):
        assert translation.gettext("Send") == "Enviar"
        assert translation.pgettext("language", "Change") == "Cambiar"
    with translation.override("en"):
        assert translation.gettext("Send") == "Send"


@pytest.mark.django_db
def test_spanish_pages_show_no_english_ui_string(make_user):
    """Every page's text, placeholders, labels and titles come from the
    catalog: none of the English msgids is left on a Spanish page."""
    from workspace_chat import services

    english = {entry.msgid for entry in polib.pofile(str(LOCALE / "es/LC_MESSAGES/django.po"))} - {"Chat", "MessagePal"}
    user = make_user("dora")
    workspace = services.workspace_create(user=user, name="Clase 7B").workspace
    pages = {"/": Client(), "/register/": Client()}
    member = Client()
    member.force_login(user)
    for path in ("/", "/messagepal/", f"/workspaces/{workspace.id}/", f"/workspaces/{workspace.id}/settings/"):
        pages[f"{path} (logged in)"] = member
    for name, client in pages.items():
        answer = client.get(name.split(" ")[0], headers={"Accept-Language": "es"}, follow=True)
        assert answer.status_code == 200
        html = answer.content.decode()
        assert html_lang(html) == "es"
        shown = {text.strip() for text in re.findall(r">([^<>]+)<", html)} | set(re.findall(r'(?:placeholder|aria-label|title)="([^"]+)"', html))
        assert sorted(shown & english) == [], name


def test_every_marked_string_of_the_ui_is_in_the_catalogs():
    """A string wrapped in the templates or the JavaScript but missing from
    the catalogs means makemessages was not run (docs/i18n.md)."""
    root = Path(settings.BASE_DIR)
    js_ids = {entry.msgid for entry in polib.pofile(str(LOCALE / "es/LC_MESSAGES/djangojs.po"))}
    template_ids = {entry.msgid for entry in polib.pofile(str(LOCALE / "es/LC_MESSAGES/django.po"))}
    marked_js = set()
    for path in (root / "static/js").glob("*.js"):
        marked_js |= set(re.findall(r'\b(?:gettext|ngettext)\("((?:[^"\\]|\\.)*)"', path.read_text()))
    marked_templates = set()
    for path in (root / "templates").glob("*.html"):
        marked_templates |= set(re.findall(r"""{% translate (?:"([^"]*)"|'([^']*)')""", path.read_text()))
    assert len(marked_js) > 200 and len(marked_templates) > 100
    assert sorted(marked_js - js_ids) == []
    assert sorted({a or b for a, b in marked_templates} - template_ids) == []
