"""Files (PROTOCOL.md part 2, "Files"): uploads typed from their bytes,
images re-encoded without EXIF/GPS and thumbnailed, served to members only,
shared by `send_message` in their own channel or conversation, removed when
no message uses them; through the services and the HTTP API."""

from __future__ import annotations

import io
import warnings
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from files.content import safe_name
from files.models import StoredFile
from files.services import files_cleanup
from messagepal import services as pal
from tests.workspace_chat.test_api import as_user, assert_field_error, get, send
from wire.errors import Invalid
from workspace_chat import lifecycle, services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path, fast_and_unlimited):
    settings.MEDIA_ROOT = tmp_path / "media"


def png(width: int = 800, height: int = 600, *, gps: bool = False, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height), "teal")
    out = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # Make
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPSInfo
        image.save(out, "JPEG", exif=exif)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def upload(user, data: bytes, name: str = "file.bin", status: int = 201, *, content_type: str = "application/octet-stream", **target: Any) -> Any:
    body: dict[str, Any] = {"file": SimpleUploadedFile(name, data, content_type=content_type)}
    body.update(target)
    response = as_user(user).post("/api/files/", body)
    assert response.status_code == status, response.content[:300]
    return response.json()


def fetch(client: Client, url: str, status: int = 200, **headers: str):
    response = client.get(url, headers=headers)
    assert response.status_code == status, (url, response.status_code)
    return response


def read(response) -> bytes:
    if not response.streaming:
        return response.content
    with warnings.catch_warnings():  # the views stream asynchronously (files.blobs); the test client reads synchronously
        warnings.simplefilter("ignore")
        return b"".join(response)


def test_an_image_is_reencoded_without_gps_thumbnailed_and_served_to_members_only(school):
    photo = png(1200, 900, gps=True)
    assert b"PhoneMaker" in photo
    obj = upload(school.carol, photo, "class trip.jpg", content_type="image/jpeg", channelId=school.general.id)
    assert set(obj) == {"id", "url", "name", "size", "contentType", "isImage", "width", "height", "thumbnailUrl"}
    assert obj["contentType"] == "image/jpeg" and obj["isImage"] is True and (obj["width"], obj["height"]) == (1200, 900)
    assert obj["url"] == f"/files/{obj['id']}/class%20trip.jpg" and obj["name"] == "class trip.jpg"
    member = as_user(school.bob)
    served = fetch(member, obj["url"])
    data = read(served)
    assert served["Content-Type"] == "image/jpeg" and served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Disposition"].startswith("inline")
    assert b"PhoneMaker" not in data and not Image.open(io.BytesIO(data)).getexif()
    assert len(data) == obj["size"]
    thumb = fetch(member, obj["thumbnailUrl"])
    assert obj["thumbnailUrl"].startswith("/files/") and max(Image.open(io.BytesIO(read(thumb))).size) == 400
    # Outsiders, logged in or not: 404, as if it did not exist.
    for client in (as_user(school.dave), Client()):
        fetch(client, obj["url"], 404)
        fetch(client, obj["thumbnailUrl"], 404)
    fetch(member, f"/files/{obj['id']}/other-name.jpg", 404)


@pytest.mark.parametrize(
    ("data", "name", "claimed", "expected"),
    [
        (b"<!doctype html><script>alert(1)</script>", "homework.png", "image/png", "application/octet-stream"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "drawing.svg", "image/svg+xml", "application/octet-stream"),
        (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "sheet.pdf", "text/html", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "broken.png", "image/png", "application/octet-stream"),  # a corrupt image
        (b"just some notes", "notes.txt", "text/plain", "application/octet-stream"),
    ],
)
def test_everything_but_the_four_image_types_is_an_attachment_typed_from_its_bytes(school, data, name, claimed, expected):
    obj = upload(school.carol, data, name, content_type=claimed, channelId=school.general.id)
    assert obj["contentType"] == expected and obj["isImage"] is False and obj["thumbnailUrl"] is None and obj["width"] is None
    served = fetch(as_user(school.alice), obj["url"])
    assert served["Content-Type"] == expected and served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Disposition"].startswith("attachment;")
    assert read(served) == data


def test_bad_uploads_store_nothing(school, settings):
    general = {"channelId": school.general.id}
    assert_field_error(upload(school.carol, b"", "empty.txt", 400, **general), "file")
    response = as_user(school.carol).post("/api/files/", general)
    assert response.status_code == 400 and "file" in response.json()["errors"]
    assert_field_error(upload(school.carol, b"x", "a.txt", 400), "channelId")  # no target
    upload(school.carol, b"x", "a.txt", 400, channelId=school.general.id, conversationId=f"conv_{school.alice.id}_{school.carol.id}")
    upload(school.carol, b"x", "a.txt", 400, conversationId="conv_x")
    upload(school.carol, b"x", "a.txt", 404, channelId=school.staff.id)  # private, not a member
    upload(school.carol, b"x", "a.txt", 404, channelId=school.news.id)  # announcements: staff only
    upload(school.dave, b"x", "a.txt", 404, **general)  # not in the workspace
    upload(school.carol, b"x", "a.txt", 404, conversationId=f"conv_{school.alice.id}_{school.bob.id}")  # not hers
    upload(school.dave, b"x", "a.txt", 404, conversationId=f"conv_{school.carol.id}_{school.dave.id}")  # shares no workspace
    # A decompression bomb: 36 million pixels of one colour, a few KB of PNG.
    assert_field_error(upload(school.carol, png(6000, 6000), "bomb.png", 400, **general), "file")
    settings.CHAT_MAX_UPLOAD_BYTES = 10
    assert upload(school.carol, b"x" * 11, "big.bin", 413, **general)["detail"]
    settings.CHAT_MAX_UPLOAD_BYTES = 1000
    settings.CHAT_UPLOAD_QUOTA_BYTES = 15
    upload(school.carol, b"x" * 10, "ten.bin", **general)
    assert "quota" in upload(school.carol, b"x" * 10, "ten-more.bin", 413, **general)["detail"]
    forged = as_user(school.carol).post("/api/files/", data=b"--xx\r\nnot a part", content_type="multipart/form-data; boundary=xx")
    assert forged.status_code == 400
    assert StoredFile.objects.count() == 1 and sum(1 for _ in (settings.MEDIA_ROOT / "files").rglob("*")) == 2  # the one, in its folder


def test_safe_names():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\kid\\photo.jpg") == "photo.jpg"
    assert safe_name("invoice\u202egpj.exe") == "invoicegpj.exe"
    assert safe_name("tab\tand\nnewline\x00.txt") == "tabandnewline.txt"
    assert safe_name("Übung 1 \u2013 café 数学.pdf") == "Übung 1 \u2013 café 数学.pdf"
    assert safe_name("...") == "file" and safe_name("") == "file" and safe_name(".bashrc") == "bashrc"
    assert len(safe_name("a" * 300 + ".pdf")) == 200 and safe_name("a" * 300 + ".pdf").endswith(".pdf")


def test_a_file_is_shared_by_send_message_in_its_own_channel_only(school):
    obj = upload(school.carol, png(100, 50), "graph.png", channelId=school.general.id)
    message = send(school.carol, school.general, "my graph", message_type="image", file_url=obj["url"])
    assert message["file"] == obj and message["fileUrl"] == obj["url"]
    history = get(school.bob, f"/api/channels/{school.general.id}/messages/")["results"]
    assert history[-1]["file"] == obj
    with pytest.raises(Invalid):
        send(school.alice, school.staff, "reposted", message_type="image", file_url=obj["url"])
    with pytest.raises(Invalid):
        send(school.carol, school.general, "gone", message_type="file", file_url=f"/files/{'x' * 22}/nothing.pdf")
    link = send(school.carol, school.general, "a link", file_url="https://example.org/sheet.pdf")
    assert link["file"] is None and link["fileUrl"] == "https://example.org/sheet.pdf"


def test_messagepal_files_before_the_first_message_and_only_in_their_conversation(school):
    conversation = f"conv_{school.bob.id}_{school.carol.id}" if school.bob.id < school.carol.id else f"conv_{school.carol.id}_{school.bob.id}"
    obj = upload(school.carol, b"%PDF-1.4 essay", "essay.pdf", conversationId=conversation)
    message, _ = pal.pal_message_send(sender=school.carol, recipient_id=school.bob.id, content="my essay", file_url=obj["url"])
    assert message["file"] == obj
    fetch(as_user(school.bob), obj["url"])
    fetch(as_user(school.alice), obj["url"], 404)
    with pytest.raises(Invalid):
        pal.pal_message_send(sender=school.carol, recipient_id=school.alice.id, content="also yours", file_url=obj["url"])


def test_byte_ranges(school):
    data = bytes(range(256)) * 40
    obj = upload(school.carol, data, "data.bin", channelId=school.general.id)
    client = as_user(school.bob)
    part = fetch(client, obj["url"], 206, Range="bytes=100-199")
    assert read(part) == data[100:200] and part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert read(fetch(client, obj["url"], 206, Range="bytes=-10")) == data[-10:]
    assert read(fetch(client, obj["url"], 206, Range="bytes=10000-")) == data[10000:]
    fetch(client, obj["url"], 416, Range="bytes=999999-")
    assert read(fetch(client, obj["url"], 200, Range="pages=1-2")) == data


def test_a_file_no_message_uses_is_removed_after_the_grace_period(school, settings):
    settings.CHAT_FILE_GRACE = 60
    shared = upload(school.carol, b"%PDF-1.4 a", "a.pdf", channelId=school.general.id)
    never_sent = upload(school.carol, b"%PDF-1.4 b", "b.pdf", channelId=school.general.id)
    first = send(school.carol, school.general, "one", message_type="file", file_url=shared["url"])
    second = send(school.bob, school.general, "two", message_type="file", file_url=shared["url"])
    later = timezone.now() + timedelta(seconds=61)
    assert files_cleanup(later) == 1  # the one never sent
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=first["id"])
    assert files_cleanup(later) == 0  # still in the second message
    assert services.message_moderate(channel_id=school.general.id, message_id=second["id"], action="delete")
    assert files_cleanup(timezone.now()) == 0  # within the grace period
    blob = StoredFile.objects.get(id=shared["id"]).blob
    assert files_cleanup(later) == 1
    assert not default_storage.exists(blob) and not StoredFile.objects.exists()
    fetch(as_user(school.bob), shared["url"], 404)
    assert never_sent["id"] != shared["id"]


def test_the_worker_removes_unused_files(school, settings):
    settings.CHAT_FILE_GRACE = 0
    settings.EMAIL_URL = ""
    upload(school.carol, b"%PDF-1.4 never sent", "c.pdf", channelId=school.general.id)
    call_command("chat_worker", "--once")
    assert not StoredFile.objects.exists() and not any(p.is_file() for p in (settings.MEDIA_ROOT / "files").rglob("*"))


def test_files_cleanup_removes_stray_bytes_too(school, settings):
    settings.CHAT_FILE_GRACE = 0
    kept = upload(school.carol, b"%PDF-1.4 kept", "kept.pdf", channelId=school.general.id)
    send(school.carol, school.general, "kept", message_type="file", file_url=kept["url"])
    default_storage.save("files/zz/stray-from-a-crash", ContentFile(b"junk"))
    out = io.StringIO()
    call_command("files_cleanup", stdout=out)
    assert "0 unused file(s) and 1 stray blob(s) removed" in out.getvalue()
    assert not default_storage.exists("files/zz/stray-from-a-crash")
    assert read(fetch(as_user(school.bob), kept["url"])) == b"%PDF-1.4 kept"


def test_an_image_the_worker_does_not_finish_in_time_is_kept_as_an_attachment_and_the_next_one_works(school, settings):
    settings.CHAT_IMAGE_TIMEOUT = 0.001
    slow = upload(school.carol, png(), "slow.png", channelId=school.general.id)
    assert slow["contentType"] == "application/octet-stream" and slow["isImage"] is False
    settings.CHAT_IMAGE_TIMEOUT = 60
    quick = upload(school.carol, png(), "quick.png", channelId=school.general.id)
    assert quick["isImage"] is True and quick["thumbnailUrl"]
