"""Files over the wire (PROTOCOL.md part 2, "Files") on a real daphne: upload
over HTTP (multipart), share with send_message, every member gets the file
object and may download it, nobody else may; MessagePal the same; the
daphne adapter refuses an over-size upload before reading it."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from tests.e2e.harness import Person
from tests.e2e.test_chat_e2e import join, send
from tests.e2e.test_messagepal_e2e import PAL, conv, pal_send


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}
    out = io.BytesIO()
    Image.new("RGB", (640, 480), "orange").save(out, "JPEG", exif=exif)
    return out.getvalue()


def upload(person: Person, data: bytes, name: str, content_type: str, **target) -> httpx.Response:
    http = person.http
    return http.client.post("/api/files/", data={k: str(v) for k, v in target.items()}, files={"file": (name, data, content_type)}, headers=http._headers())


async def test_an_upload_is_shared_in_its_channel_and_downloaded_by_members_only(classroom):
    r = upload(classroom.alice, jpeg_with_gps(), "whiteboard.jpg", "image/jpeg", channelId=classroom.general)
    assert r.status_code == 201, r.text
    obj = r.json()
    assert obj["isImage"] and (obj["width"], obj["height"]) == (640, 480) and obj["thumbnailUrl"]
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    sent = await send(a, classroom.general, "the whiteboard", messageType="image", fileUrl=obj["url"])
    assert sent["file"] == obj
    got = await b.expect("new_message")
    assert got["message"]["file"] == obj
    downloaded = classroom.bob.http.get(obj["url"])
    assert downloaded.status_code == 200 and downloaded.headers["content-type"] == "image/jpeg"
    assert downloaded.headers["x-content-type-options"] == "nosniff" and len(downloaded.content) == obj["size"]
    assert not Image.open(io.BytesIO(downloaded.content)).getexif()  # no GPS left
    thumb = classroom.bob.http.get(obj["thumbnailUrl"])
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) <= 400
    history = classroom.bob.http.get(f"/api/channels/{classroom.general}/messages/").json()["results"]
    assert history[-1]["file"] == obj
    assert classroom.outsider.http.get(obj["url"]).status_code == 404
    assert httpx.get(classroom.server.base + obj["url"]).status_code == 404  # not logged in
    # An HTML page downloads instead of rendering.
    page = upload(classroom.bob, b"<html><script>alert(document.cookie)</script></html>", "notes.html", "text/html", channelId=classroom.general).json()
    served = classroom.alice.http.get(page["url"])
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment;")
    # Another channel's file is refused on the wire.
    await a.send({"type": "send_message", "channelId": classroom.general, "content": "x", "fileUrl": "/files/AAAAAAAAAAAAAAAAAAAAAA/x.pdf", "requestId": "f1"})
    error = await a.expect("error")
    assert error["code"] == "bad_request" and error["requestId"] == "f1"


async def test_a_messagepal_file_before_the_first_message(trio):
    ann, ben, eve = trio
    obj = upload(ann, b"%PDF-1.4 essay", "essay.pdf", "application/pdf", conversationId=conv(ann, ben)).json()
    assert obj["contentType"] == "application/pdf" and not obj["isImage"]
    ws = await ann.connect(PAL)
    message = await pal_send(ws, ben, "my essay", fileUrl=obj["url"])
    assert message["file"] == obj
    assert ben.http.get(obj["url"]).content == b"%PDF-1.4 essay"
    assert eve.http.get(obj["url"]).status_code == 404


async def test_an_over_size_upload_is_refused_before_it_is_read(classroom):
    too_big = b"\0" * (25 * 1024 * 1024 + 1)
    r = upload(classroom.alice, too_big, "huge.bin", "application/octet-stream", channelId=classroom.general)
    assert r.status_code == 413
    empty = upload(classroom.alice, b"", "empty.bin", "application/octet-stream", channelId=classroom.general)
    assert empty.status_code == 400 and "file" in empty.json()["errors"]


async def test_large_uploads_reach_the_app_as_twisteds_body_file_and_come_back_byte_for_byte(classroom):
    # Over 100 kB Twisted keeps a body in a temporary file, which the daphne
    # adapter hands to Django as that file (patch 7); over 2.5 MB Django's
    # upload is a temporary file too, moved into the storage; an image of
    # that size is re-encoded in the image worker process from its path.
    import os

    data = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024)
    r = upload(classroom.alice, data, "big.pdf", "application/pdf", channelId=classroom.general)
    assert r.status_code == 201, r.text
    obj = r.json()
    got = classroom.bob.http.get(obj["url"])
    assert got.status_code == 200 and got.content == data
    part = classroom.bob.http.get(obj["url"], headers={"Range": "bytes=2000000-2000009"})
    assert part.status_code == 206 and part.content == data[2000000:2000010]
    out = io.BytesIO()
    Image.frombytes("RGB", (2000, 1500), os.urandom(2000 * 1500 * 3)).save(out, "JPEG", quality=95)
    assert len(out.getvalue()) > 2_600_000
    photo = upload(classroom.alice, out.getvalue(), "noise.jpg", "image/jpeg", channelId=classroom.general).json()
    assert photo["isImage"] and (photo["width"], photo["height"]) == (2000, 1500)
    assert Image.open(io.BytesIO(classroom.bob.http.get(photo["url"]).content)).size == (2000, 1500)
    assert classroom.outsider.http.get(obj["url"]).status_code == 404


async def test_uploads_sent_at_once_take_turns_and_every_one_is_stored(classroom):
    # The server handles CHAT_UPLOAD_CONCURRENCY (2) uploads at a time; the
    # other four wait their turn (chatsite/handler.py) and none is lost.
    import asyncio
    import os

    blobs = [b"%PDF-1.4\n" + os.urandom(300_000) for _ in range(6)]
    answers = await asyncio.gather(*(
        asyncio.to_thread(upload, classroom.alice, blob, f"part {i}.pdf", "application/pdf", channelId=classroom.general)
        for i, blob in enumerate(blobs)
    ))
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    objects = [a.json() for a in answers]
    assert len({o["id"] for o in objects}) == 6
    for blob, obj in zip(blobs, objects, strict=True):
        assert classroom.bob.http.get(obj["url"]).content == blob
