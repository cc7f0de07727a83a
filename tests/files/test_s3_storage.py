"""Uploads kept in a real S3-compatible object store (CHAT_FILE_STORAGE=s3,
django-storages' S3Storage; `scripts/services up s3` starts gofakes3):
upload, download with the access check (ranges, 404 to outsiders), the
thumbnail, and the removal of unused files and stray objects. Fails in CI
when the store is not running."""

from __future__ import annotations

import io
import os
import secrets
from datetime import timedelta

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from chatsite.s3 import s3_options
from files import blobs
from files.models import StoredFile
from files.services import files_cleanup
from tests.conftest import require_service
from tests.files.test_files import fetch, png, read, upload
from tests.workspace_chat.test_api import as_user, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.needs_s3]


@pytest.fixture
def bucket(settings, fast_and_unlimited):
    """The object store under a prefix of this test's own; its objects, as the client sees them."""
    require_service("CHAT_S3_ENDPOINT_URL", os.environ.get("CHAT_S3_ENDPOINT_URL", ""))
    # CHAT_FILE_STORAGE=s3's own options, under a prefix of this test's.
    options = {**s3_options(os.environ), "location": f"test-{secrets.token_hex(6)}"}
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}
    client = boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id=options["access_key"],
                          aws_secret_access_key=options["secret_key"], region_name=options["region_name"], config=options["client_config"])

    def objects() -> set[str]:
        listed = client.list_objects_v2(Bucket=options["bucket_name"], Prefix=options["location"] + "/")
        return {item["Key"][len(options["location"]) + 1 :] for item in listed.get("Contents", [])}

    assert blobs.is_s3(default_storage)
    yield objects
    for key in objects():
        client.delete_object(Bucket=options["bucket_name"], Key=f"{options['location']}/{key}")


def test_an_upload_is_stored_in_the_bucket_and_served_to_members_only_with_ranges(school, bucket):
    data = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024)  # past FILE_UPLOAD_MAX_MEMORY_SIZE: from a temporary file
    obj = upload(school.carol, data, "worksheet.pdf", channelId=school.general.id)
    stored = StoredFile.objects.get(id=obj["id"])
    assert bucket() == {stored.blob} and obj["size"] == len(data) and obj["contentType"] == "application/pdf"
    member = as_user(school.bob)
    whole = fetch(member, obj["url"])
    assert read(whole) == data and whole["Content-Length"] == str(len(data))
    assert whole["Content-Disposition"].startswith("attachment;") and whole["X-Content-Type-Options"] == "nosniff"
    part = fetch(member, obj["url"], 206, Range="bytes=1000000-1000099")
    assert read(part) == data[1000000:1000100] and part["Content-Range"] == f"bytes 1000000-1000099/{len(data)}"
    assert read(fetch(member, obj["url"], 206, Range="bytes=-10")) == data[-10:]
    fetch(member, obj["url"], 416, Range=f"bytes={len(data)}-")
    for outsider in (as_user(school.dave), Client()):
        fetch(outsider, obj["url"], 404)
        fetch(outsider, obj["url"], 404, Range="bytes=0-9")


def test_an_image_and_its_thumbnail_are_in_the_bucket_without_gps(school, bucket):
    obj = upload(school.carol, png(1600, 1200, gps=True), "trip.jpg", content_type="image/jpeg", channelId=school.general.id)
    stored = StoredFile.objects.get(id=obj["id"])
    assert obj["isImage"] and bucket() == {stored.blob, stored.thumbnail_blob}
    member = as_user(school.alice)
    data = read(fetch(member, obj["url"]))
    assert len(data) == obj["size"] and b"PhoneMaker" not in data and Image.open(io.BytesIO(data)).size == (1600, 1200)
    thumb = fetch(member, obj["thumbnailUrl"])
    assert thumb["Content-Type"] == "image/jpeg" and max(Image.open(io.BytesIO(read(thumb))).size) == 400
    fetch(as_user(school.dave), obj["thumbnailUrl"], 404)


def test_unused_files_and_stray_objects_are_removed_from_the_bucket(school, bucket, settings):
    settings.CHAT_FILE_GRACE = 60
    kept = upload(school.carol, b"%PDF-1.4 kept", "kept.pdf", channelId=school.general.id)
    send(school.carol, school.general, "kept", message_type="file", file_url=kept["url"])
    upload(school.carol, png(), "never-sent.png", channelId=school.general.id)
    assert len(bucket()) == 3  # kept, the image and its thumbnail
    assert files_cleanup(timezone.now() + timedelta(seconds=61)) == 1
    assert bucket() == {StoredFile.objects.get(id=kept["id"]).blob}
    default_storage.save("files/zz/stray-from-a-crash", ContentFile(b"junk"))
    settings.CHAT_FILE_GRACE = 0
    out = io.StringIO()
    call_command("files_cleanup", stdout=out)
    assert "1 stray blob(s) removed" in out.getvalue()
    assert bucket() == {StoredFile.objects.get(id=kept["id"]).blob}
    assert read(fetch(as_user(school.bob), kept["url"])) == b"%PDF-1.4 kept"
