"""Files in the browser (real Chromium through playwright, real daphne):
PROTOCOL.md part 2 "Files" and "Browser UI names" ("Attach file"; "Send"
once the upload is done). Attaching by the button and by paste, the upload's
progress bar, the file waiting in the composer, Send posting it, the image
preview and its enlarge dialog on both pages, the other person downloading
it, an outsider's 404, an HTML upload that downloads instead of rendering,
an external image URL shown as a link (never requested), upload errors in
words, and MessagePal. Screenshots go into test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.browser import Tab, channel_path, new_tab
from tests.e2e.pages import bubble, expect, live
from tests.e2e.test_browser_pal_lifecycle import pair
from tests.e2e.test_chat_e2e import join, send

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n% homework sheet\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
HTML = b"<!doctype html><html><body><script>window.__pwned = 1; alert(1)</script>homework</body></html>"


def png(width: int, height: int, colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def composer(tab: Tab):
    return tab.page.get_by_role("textbox", name="Message", exact=True)


def send_button(tab: Tab):
    return tab.page.get_by_role("button", name="Send", exact=True)


async def attach(tab: Tab, name: str, mime: str, data: bytes) -> None:
    """Chooses a file in the composer's "Attach file" input."""
    await tab.page.get_by_label("Attach file").set_input_files({"name": name, "mimeType": mime, "buffer": data})


async def paste(tab: Tab, name: str, mime: str, data: bytes) -> None:
    """Pastes a file into the composer's textbox: a ClipboardEvent whose
    DataTransfer holds a File built in the page (as a pasted screenshot)."""
    await composer(tab).focus()
    await tab.page.evaluate(
        """([name, type, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, { type }));
            const box = document.activeElement;
            box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
        }""",
        [name, mime, base64.b64encode(data).decode()],
    )


async def drop(tab: Tab, name: str, mime: str, data: bytes) -> None:
    """Drags a file (built in the page) over the composer and drops it."""
    await tab.page.evaluate(
        """([name, type, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, { type }));
            const form = document.getElementById("composer-form");
            for (const kind of ["dragenter", "dragover", "drop"]) {
                form.dispatchEvent(new DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true }));
            }
        }""",
        [name, mime, base64.b64encode(data).decode()],
    )


async def ready(tab: Tab, name: str) -> None:
    """The upload finished: the file waits in the composer and Send is on."""
    tray = tab.page.locator(".attach-tray")
    await expect(tray.get_by_text(name, exact=True)).to_be_visible()
    await expect(tray.get_by_role("button", name="Remove attachment")).to_be_visible()
    await expect(tab.page.get_by_role("progressbar")).to_have_count(0)
    await expect(send_button(tab)).to_be_enabled()


async def held_uploads(tab: Tab) -> asyncio.Event:
    """Holds the page's uploads until the returned event is set, so that the
    in-progress state can be seen (on loopback it is over at once)."""
    release = asyncio.Event()

    async def hold(route) -> None:
        await release.wait()
        await route.continue_()

    await tab.page.route("**/api/files/", hold)
    return release


async def downloaded(tab: Tab, link) -> bytes:
    """Clicks a download link: a download (not a navigation); its bytes."""
    async with tab.page.expect_download() as info:
        await link.click()
    download = await info.value
    return Path(await download.path()).read_bytes()


async def open_channel(browser, room, name: str, person) -> Tab:
    tab = await new_tab(browser, room.server, name, person)
    await tab.page.goto(channel_path(room.workspace_id, room.general))
    await live(tab)
    return tab


async def test_attach_an_image_by_the_button_preview_enlarge_and_download(classroom, browser):
    """Alice attaches a photo with "Attach file": a progress bar while it
    uploads (Send off), then the photo in the composer (Send on); Send posts
    it with her caption. Both see the thumbnail preview (alt = the name,
    width/height set), it enlarges in a dialog (Escape closes, the focus
    returns), Bob downloads the full image, and an outsider's request for
    the file or its thumbnail is a 404."""
    test = "files-image"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)

    release = await held_uploads(alice)
    await attach(alice, "whiteboard.png", "image/png", png(1200, 800, "teal"))
    progress = alice.page.get_by_role("progressbar", name="Uploading whiteboard.png")
    await expect(progress).to_be_visible()
    await expect(send_button(alice)).to_be_disabled()
    await composer(alice).fill("today's whiteboard")
    await composer(alice).press("Enter")  # not while it uploads
    await expect(bubble(alice, "today's whiteboard")).to_have_count(0)
    await alice.shot(test, "uploading")
    release.set()
    await ready(alice, "whiteboard.png")
    thumb = alice.page.locator(".attach-tray img.attach-thumb")
    assert await thumb.evaluate("(img) => img.decode().then(() => img.naturalWidth)") == 400
    await alice.shot(test, "composer-with-attachment")

    await send_button(alice).click()
    await expect(alice.page.locator(".attach-tray").get_by_text("whiteboard.png")).to_have_count(0)
    await expect(composer(alice)).to_have_value("")
    mine = bubble(alice, "today's whiteboard")
    await expect(mine).to_have_attribute("data-key", re.compile(r"^\d+$"))
    theirs = bubble(bob, "today's whiteboard")
    for message in (mine, theirs):
        preview = message.get_by_role("button", name="whiteboard.png")
        await expect(preview).to_be_visible()
        image = preview.get_by_role("img", name="whiteboard.png")
        await expect(image).to_have_attribute("src", re.compile(r"^/files/"))
        await expect(image).to_have_attribute("width", "320")
        await expect(image).to_have_attribute("height", "213")
        assert await image.evaluate("(img) => img.decode().then(() => img.naturalWidth)") == 400  # the thumbnail
    await bob.shot(test, "image-preview")

    # The file object (from the message history) for the direct requests.
    history = room.bob.http.get(f"/api/channels/{room.general}/messages/").json()["results"]
    file = history[-1]["file"]
    assert file["name"] == "whiteboard.png" and file["isImage"]
    assert await bob.page.get_by_role("img", name="whiteboard.png").get_attribute("src") == file["thumbnailUrl"]

    # Enlarge: a dialog with the full image; Escape closes, the focus returns.
    preview = theirs.get_by_role("button", name="whiteboard.png")
    await preview.click()
    dialog = bob.page.get_by_role("dialog", name="whiteboard.png")
    await expect(dialog).to_be_visible()
    full = dialog.get_by_role("img", name="whiteboard.png")
    await expect(full).to_have_attribute("src", file["url"])
    assert await full.evaluate("(img) => img.decode().then(() => img.naturalWidth)") == 1200
    box = await full.bounding_box()
    assert box and abs(box["width"] / box["height"] - 1.5) < 0.02, box  # not stretched
    await bob.shot(test, "enlarged")
    await bob.page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(preview).to_be_focused()

    # Bob downloads it (from the enlarged view): the bytes the server keeps.
    await preview.press("Enter")
    await expect(dialog).to_be_visible()
    body = await downloaded(bob, dialog.get_by_role("link", name="Download"))
    served = await bob.page.request.get(file["url"])
    assert served.status == 200 and served.headers["content-type"] == "image/png"
    assert body == await served.body() and len(body) == file["size"]
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    await expect(preview).to_be_focused()

    # An outsider (logged in, not a member) gets 404 for the file and its thumbnail.
    outsider = await new_tab(browser, room.server, "outsider", room.outsider)
    await outsider.page.goto("/")
    for url in (file["url"], file["thumbnailUrl"]):
        answer = await outsider.page.request.get(url)
        assert answer.status == 404, (url, answer.status)
    for tab in (alice, bob, outsider):
        tab.assert_clean()


async def test_paste_a_file_the_other_downloads_it_and_html_never_renders(classroom, browser):
    """Bob pastes a PDF into the composer and sends it without a caption (the
    message is its name); Alice sees a card (icon, name, size) and downloads
    the same bytes; a file dropped on the composer goes the same way. An HTML upload is a card too: its link downloads (an
    attachment, application/octet-stream), its script never runs."""
    test = "files-paste"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)

    await paste(bob, "homework.pdf", "application/pdf", PDF)
    await ready(bob, "homework.pdf")
    await expect(composer(bob)).to_have_value("")  # the file, not its bytes as text
    await send_button(bob).click()
    card = bubble(alice, "homework.pdf").locator(".attachment-file")
    await expect(card).to_be_visible()
    await expect(card.get_by_text("homework.pdf", exact=True)).to_be_visible()
    await expect(card.get_by_text(re.compile(r"^PDF · \d+ bytes$"))).to_be_visible()
    link = card.get_by_role("link", name="Download")
    await expect(link).to_have_attribute("download", "homework.pdf")
    assert await downloaded(alice, link) == PDF
    await alice.shot(test, "file-card")

    # Dropped on the composer: the same.
    await drop(alice, "answers.txt", "text/plain", b"42\n")
    await ready(alice, "answers.txt")
    await send_button(alice).click()
    card = bubble(bob, "answers.txt").locator(".attachment-file")
    assert await downloaded(bob, card.get_by_role("link", name="Download")) == b"42\n"

    # An HTML page: chosen with the button, it downloads instead of rendering.
    await attach(alice, "notes.html", "text/html", HTML)
    await ready(alice, "notes.html")
    await composer(alice).fill("my notes")
    await composer(alice).press("Enter")
    html_link = bubble(bob, "my notes").get_by_role("link", name="Download")
    await expect(html_link).to_have_attribute("download", "notes.html")
    href = await html_link.get_attribute("href")
    served = await bob.page.request.get(href)
    assert served.status == 200
    assert served.headers["content-disposition"].startswith("attachment;")
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert await downloaded(bob, html_link) == HTML
    # Even opened directly, the browser downloads it rather than show it.
    async with bob.page.expect_download() as info:
        await bob.page.evaluate("(href) => { window.location.href = href; }", href)
    assert Path(await (await info.value).path()).read_bytes() == HTML
    await bob.page.wait_for_timeout(200)
    assert await bob.page.evaluate("window.__pwned") is None
    for tab in (alice, bob):
        tab.assert_clean()


async def test_an_external_image_url_is_a_link_and_never_requested(classroom, browser):
    """A message whose fileUrl is another host's image (a tracking pixel) is
    shown as a link (noopener noreferrer, a new tab); the page never asks
    that host for it."""
    test = "files-external"
    room = classroom
    pixel = "https://tracker.example/pixel.png?reader=1"
    bob = await new_tab(browser, room.server, "bob", room.bob)
    asked: list[str] = []
    bob.page.on("request", lambda request: asked.append(request.url))
    await bob.page.goto(channel_path(room.workspace_id, room.general))
    await live(bob)
    ws = await room.alice.connect()
    await join(ws, room.general)
    await send(ws, room.general, "look at this", messageType="image", fileUrl=pixel)
    message = bubble(bob, "look at this")
    link = message.get_by_role("link", name=pixel)
    await expect(link).to_have_attribute("href", pixel)
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(bob.page.locator(f'img[src="{pixel}"]')).to_have_count(0)
    await expect(message.locator("img")).to_have_count(0)
    await bob.page.reload()  # from the history too
    await live(bob)
    await expect(bubble(bob, "look at this").get_by_role("link", name=pixel)).to_be_visible()
    await expect(bob.page.locator("img[src^='https:']")).to_have_count(0)
    assert not [url for url in asked if "tracker.example" in url], asked
    await bob.shot(test, "link")
    bob.assert_clean()


async def test_upload_errors_are_shown_in_words(classroom, browser):
    """An empty file (400) and an upload over the size limit or the quota
    (413) are told next to the composer; nothing waits to be sent."""
    test = "files-errors"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    error = alice.page.locator(".attach-tray").get_by_role("alert")

    await attach(alice, "empty.txt", "text/plain", b"")
    await expect(error).to_have_text(re.compile(r"^empty\.txt could not be uploaded: [A-Z][^:]*\.$"))
    await expect(alice.page.locator(".attach-tray").get_by_role("button", name="Remove attachment")).to_have_count(0)
    await expect(send_button(alice)).to_be_enabled()

    # The quota's 413 (its detail shown as the server words it).
    async def over_quota(route) -> None:
        await route.fulfill(status=413, json={"detail": "Your uploads would pass your quota of 1.0 GiB."})

    await alice.page.route("**/api/files/", over_quota)
    await attach(alice, "video.mp4", "video/mp4", b"\0" * 2048)
    await expect(error).to_have_text("video.mp4 could not be uploaded: Your uploads would pass your quota of 1.0 GiB.")
    await alice.shot(test, "quota")
    await alice.page.unroute("**/api/files/")

    # A real over-size upload (over CHAT_MAX_UPLOAD_BYTES, 25 MiB).
    await attach(alice, "huge.bin", "application/octet-stream", b"\0" * (25 * 1024 * 1024 + 1))
    await expect(error).to_contain_text(re.compile(r"^huge\.bin could not be uploaded: .*limit"), timeout=30_000)
    await expect(alice.page.get_by_role("progressbar")).to_have_count(0)
    await expect(send_button(alice)).to_be_enabled()
    await alice.shot(test, "too-large")

    # A good file afterwards clears the error.
    await attach(alice, "fine.txt", "text/plain", b"fine")
    await ready(alice, "fine.txt")
    await expect(error).to_have_text("")
    await alice.page.locator(".attach-tray").get_by_role("button", name="Remove attachment").click()
    await expect(alice.page.locator(".attach-tray").get_by_text("fine.txt")).to_have_count(0)
    await expect(composer(alice)).to_be_focused()
    alice.assert_clean()


async def test_messagepal_attachments_by_keyboard_and_paste(classroom, browser):
    """MessagePal: Alice opens the file chooser from the keyboard ("Attach
    file", Enter) and sends a PDF; Bob downloads it. Bob pastes a picture:
    both see its preview, and it enlarges."""
    test = "files-pal"
    room = classroom
    alice, bob = await pair(browser, room)

    # Listening from the start: the page intercepts file choosers before the
    # key is pressed (playwright turns interception on asynchronously).
    alice.page.on("filechooser", lambda _chooser: None)
    await expect(alice.page.get_by_role("dialog")).to_have_count(0)
    chooser_input = alice.page.get_by_label("Attach file")
    await chooser_input.focus()
    await expect(chooser_input).to_be_focused()
    async with alice.page.expect_file_chooser() as chooser:
        await chooser_input.press("Enter")
    await (await chooser.value).set_files({"name": "essay.pdf", "mimeType": "application/pdf", "buffer": PDF})
    await ready(alice, "essay.pdf")
    await composer(alice).fill("my essay")
    await alice.shot(test, "composer-with-attachment")
    await composer(alice).press("Enter")
    card = bubble(bob, "my essay").locator(".attachment-file")
    await expect(card.get_by_text("essay.pdf", exact=True)).to_be_visible()
    assert await downloaded(bob, card.get_by_role("link", name="Download")) == PDF

    await paste(bob, "image.png", "image/png", png(300, 500, "purple"))
    await ready(bob, "image.png")
    await send_button(bob).click()
    for tab in (alice, bob):
        preview = bubble(tab, "image.png").get_by_role("button", name="image.png")
        await expect(preview).to_be_visible()
        image = preview.get_by_role("img", name="image.png")
        await expect(image).to_have_attribute("width", "144")
        await expect(image).to_have_attribute("height", "240")
    await alice.shot(test, "image-preview")
    await bubble(alice, "image.png").get_by_role("button", name="image.png").click()
    dialog = alice.page.get_by_role("dialog", name="image.png")
    await expect(dialog).to_be_visible()
    await alice.page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    # Reloaded, the history carries the files too.
    await alice.page.reload()
    await live(alice)
    await expect(bubble(alice, "my essay").get_by_role("link", name="Download")).to_be_visible()
    await expect(bubble(alice, "image.png").get_by_role("img", name="image.png")).to_be_visible()
    for tab in (alice, bob):
        tab.assert_clean()
