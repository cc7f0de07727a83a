"""The UI in Spanish (issue 21, "Languages"; docs/i18n.md): a browser whose
language is Spanish (`locale="es-ES"`, so Accept-Language es-ES) gets the
login page, a channel's page and MessagePal in Spanish, dates written by
Intl in Spanish, and goes back to English with the header's language picker
(which then holds on every page). At 390x844 (a phone) and 1280x800. Real
Chromium against the real daphne harness; screenshots in
test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import Tab, channel_path
from tests.e2e.pages import bubble, by_key, expect, live
from tests.e2e.test_browser_a11y import SIZES, no_sideways_scroll
from tests.e2e.test_chat_e2e import join, send
from tests.e2e.test_messagepal_e2e import conv

pytestmark = pytest.mark.e2e


async def spanish_tab(browser, server, name: str, person, size: str) -> Tab:
    context = await browser.new_context(base_url=server.base, locale="es-ES", **SIZES[size])
    if person is not None:
        await context.add_cookies([{"name": "sessionid", "value": person.http.session_id, "url": server.base}])
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return Tab(context, page, name)


async def within_width(tab: Tab, locator, width: int) -> None:
    """The element is wholly inside the first `width` px (not cut off by the header's edge)."""
    box = await locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box


async def page_language(tab: Tab) -> str:
    return await tab.page.evaluate("() => document.documentElement.lang")


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_a_spanish_browser_gets_spanish_and_the_picker_switches_to_english(classroom, browser, size):
    test = f"i18n-{size}"
    room = classroom
    bob = await room.bob.connect()
    await join(bob, room.general)
    await send(bob, room.general, "Hola a todos, @alice")
    r = room.bob.http.post(f"/api/messagepal/conversations/{conv(room.bob, room.alice)}/messages/", {"content": "hola desde Bob", "clientId": "i18n-1"})
    assert r.status_code == 201, r.text

    # The login page.
    visitor = await spanish_tab(browser, room.server, "visitor", None, size)
    page = visitor.page
    await page.goto("/")
    assert await page_language(visitor) == "es"
    await expect(page.get_by_role("button", name="Iniciar sesión")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Nombre de usuario")).to_be_visible()
    await expect(page.get_by_label("Contraseña")).to_be_visible()
    await expect(page.get_by_role("link", name="Crear una cuenta")).to_be_visible()
    await expect(page.get_by_role("combobox", name="Idioma")).to_have_value("es")
    await page.get_by_role("textbox", name="Nombre de usuario").fill(room.alice.username)
    await page.get_by_label("Contraseña").fill("not her password")
    await page.get_by_role("button", name="Iniciar sesión").click()
    await expect(page.get_by_role("alert")).to_have_text("Nombre de usuario o contraseña incorrectos.")
    await no_sideways_scroll(visitor)
    await visitor.shot(test, "login")

    # A channel's page: the composer, its buttons, a message's actions and its date.
    alice = await spanish_tab(browser, room.server, "alice", room.alice, size)
    page = alice.page
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    assert await page_language(alice) == "es"
    composer = page.get_by_role("textbox", name="Mensaje", exact=True)
    await expect(composer).to_have_attribute("placeholder", "Escribe un mensaje… (Intro para enviar, Mayús+Intro para una línea nueva)")
    await expect(page.get_by_role("button", name="Enviar", exact=True)).to_be_visible()
    await expect(page.get_by_label("Adjuntar archivo", exact=True)).to_be_attached()
    await expect(page.get_by_role("searchbox", name="Buscar mensajes")).to_have_attribute("placeholder", "Buscar mensajes")
    await expect(page.get_by_role("button", name="Notificaciones")).to_be_visible()
    if size == "phone":
        await expect(page.get_by_role("button", name="Canales", exact=True)).to_be_visible()
    # The header holds the picker and still shows "Log out" (the picker's
    # button only once another language is chosen).
    width = SIZES[size]["viewport"]["width"]
    await within_width(alice, page.get_by_role("button", name="Salir"), width)
    await within_width(alice, page.get_by_role("combobox", name="Idioma"), width)
    await expect(page.get_by_role("button", name="Cambiar")).to_be_hidden()
    await composer.fill("Mi primer mensaje en español")
    await composer.press("Enter")
    sent = bubble(alice, "Mi primer mensaje en español")
    await expect(sent).to_have_attribute("data-key", re.compile(r"^\d+$"))
    mine = by_key(alice, await sent.get_attribute("data-key"))
    await expect(mine.locator(".message-body")).to_have_attribute("dir", "auto")
    await expect(mine.get_by_role("img", name="Enviado")).to_be_attached()
    await mine.focus()
    for name in ("Editar", "Eliminar", "Añadir reacción", "Responder en el hilo"):
        await expect(mine.get_by_role("button", name=name, exact=True)).to_be_visible()
    await mine.get_by_role("button", name="Editar", exact=True).click()
    editor = page.get_by_role("textbox", name="Editar mensaje")
    await editor.fill("Mi primer mensaje en español, editado")
    await editor.press("Enter")
    await expect(mine.get_by_text("(editado)")).to_be_visible()
    # Dates through Intl in the page's language: the message's full date is
    # Spanish (not the English one).
    time = mine.locator("time")
    stamp = await time.get_attribute("datetime")
    shown = await time.get_attribute("title")
    formats = await page.evaluate(
        """(iso) => ["es", "en"].map((lang) => new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)))""",
        stamp,
    )
    assert shown == formats[0] and shown != formats[1], (shown, formats)
    await no_sideways_scroll(alice)
    await alice.shot(test, "channel")

    # MessagePal.
    await page.goto("/messagepal/")
    await expect(page.get_by_role("heading", name="Elige una conversación")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Mensaje", exact=True)).to_be_attached()
    await expect(page.get_by_role("button", name="Enviar", exact=True)).to_be_attached()
    await expect(page.get_by_role("log")).to_contain_text("Elige una conversación o busca a una persona a quien escribir.")
    if size == "phone":
        await page.get_by_role("button", name="Canales", exact=True).click()
    await expect(page.get_by_role("searchbox", name="Buscar a una persona")).to_have_attribute("placeholder", "Nombre o nombre de usuario")
    await expect(page.locator("#conversation-list a")).to_have_count(1)
    await no_sideways_scroll(alice)
    await alice.shot(test, "messagepal")
    if size == "phone":
        await page.keyboard.press("Escape")

    # Back to English with the picker, by keyboard: it holds on every page.
    picker = page.get_by_role("combobox", name="Idioma")
    await picker.select_option("en")
    await picker.press("Tab")
    await expect(page.get_by_role("button", name="Cambiar")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("combobox", name="Language")).to_have_value("en")
    assert await page_language(alice) == "en"
    assert page.url.endswith("/messagepal/")
    await expect(page.get_by_role("heading", name="Pick a conversation")).to_be_visible()
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    await within_width(alice, page.get_by_role("button", name="Log out"), width)
    await expect(page.get_by_role("textbox", name="Message", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    await expect(page.get_by_role("log").get_by_text("(edited)")).to_be_visible()
    await alice.shot(test, "english-again")
    visitor.assert_clean()
    alice.assert_clean()
