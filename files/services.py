"""Writes of files: an upload (checked, typed from its bytes, images made
safe, stored through Django's storage API), its use by messages, and the
removal of files no message uses."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from chatsite.limits import human_size
from files import content, imaging
from files.models import FileUse, StoredFile
from files.schema import FileObject
from files.selectors import file_object, local_file_id
from messagepal.selectors import access_conversation, blocks_between
from wire.errors import ChatError, Invalid, NotFound, TooLarge
from workspace_chat.models import ChannelKind
from workspace_chat.selectors import access_channel

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 8192


def _upload_target(user: User, channel_id: int | None, conversation_id: str | None) -> tuple[int | None, str]:
    """(channel id, conversation id) the caller may post to; NotFound otherwise."""
    if (channel_id is None) == (conversation_id is None):
        raise Invalid("channelId", "Give either channelId or conversationId.")
    try:
        if channel_id is not None:
            access = access_channel(user, channel_id)
            access.require_unmuted()
            if access.channel.kind == ChannelKind.ANNOUNCEMENT and not access.is_staff:
                raise NotFound("")
            return access.channel.id, ""
        assert conversation_id is not None
        low, high = access_conversation(user, conversation_id)
        other = high if user.id == low else low
        if blocks_between(user, other).blocked:
            raise NotFound("")
        return None, conversation_id
    except ChatError:
        raise NotFound("No such channel or conversation, or you may not post there.") from None


def file_upload(*, user: User, upload: UploadedFile, channel_id: int | None = None, conversation_id: str | None = None) -> FileObject:
    """Store an upload for one channel or conversation. Django's temporary
    upload file is moved into the storage (FileSystemStorage) or streamed to
    it; an image is re-encoded in files.imaging's worker process first."""
    target_channel, target_conversation = _upload_target(user, channel_id, conversation_id)
    size = upload.size or 0
    if size <= 0:
        raise Invalid("file", "The file is empty.")
    if size > settings.CHAT_MAX_UPLOAD_BYTES:
        raise TooLarge(f"The file is larger than {human_size(settings.CHAT_MAX_UPLOAD_BYTES)}.")
    used = StoredFile.objects.filter(uploader=user).aggregate(total=Sum("size"))["total"] or 0
    if used + size > settings.CHAT_UPLOAD_QUOTA_BYTES:
        raise TooLarge(f"Your files would take more than your quota of {human_size(settings.CHAT_UPLOAD_QUOTA_BYTES)}; delete some first.")
    upload.seek(0)
    content_type = content.sniff(upload.read(_SNIFF_BYTES))
    upload.seek(0)
    stored = StoredFile(uploader=user, channel_id=target_channel, conversation_id=target_conversation, name=content.safe_name(upload.name or ""))
    stored.content_type, stored.size = content_type, size
    base = f"files/{stored.id[:2]}/{stored.id}"
    body: File = upload  # a temporary file on disk is moved into FileSystemStorage, not copied
    reencoded: imaging.ReencodedFile | None = None
    if content_type in content.IMAGE_TYPES:
        try:
            picture, reencoded = imaging.reencode(upload, content_type)
        except content.ImageTooLarge:
            raise Invalid("file", f"The image has more than {settings.CHAT_MAX_IMAGE_PIXELS} pixels.") from None
        except ValueError:
            stored.content_type = content.OCTET_STREAM  # looks like an image, is not one: an attachment
        else:
            stored.is_image, stored.width, stored.height, stored.size = True, picture.width, picture.height, picture.size
            body = reencoded
            ext = "png" if picture.thumbnail_type == "image/png" else "jpg"
            stored.thumbnail_blob = default_storage.save(f"{base}.thumb.{ext}", ContentFile(picture.thumbnail))
    try:
        upload.seek(0)
        stored.blob = default_storage.save(base, body)
    except BaseException:
        _delete_blobs(stored)
        raise
    finally:
        if reencoded is not None:
            imaging.discard(reencoded)
    stored.orphaned_at = timezone.now()  # until a message carries it
    try:
        stored.save(force_insert=True)
    except BaseException:
        _delete_blobs(stored)
        raise
    return file_object(stored)


def file_for_message(*, url: str | None, channel_id: int | None = None, conversation_id: str | None = None) -> FileObject | None:
    """The upload a message's `fileUrl` names, which must belong to the
    message's channel or conversation; None for a URL that is not one of
    this site's `/files/` (a link)."""
    file_id = local_file_id(url)
    if file_id is None:
        return None
    stored = StoredFile.objects.filter(id=file_id).first()
    if stored is None:
        raise Invalid("fileUrl", "No such file: upload it again.")
    if (channel_id is not None and stored.channel_id != channel_id) or (conversation_id is not None and stored.conversation_id != conversation_id):
        raise Invalid("fileUrl", "That file was uploaded for another channel or conversation.")
    return file_object(stored)


def file_used(*, file: FileObject, stream: str, message_id: int) -> None:
    """A message now carries the file (inside its transaction)."""
    FileUse.objects.get_or_create(stream=stream, message_id=message_id, defaults={"file_id": file["id"]})
    StoredFile.objects.filter(id=file["id"]).exclude(orphaned_at=None).update(orphaned_at=None)


def message_gone(*, stream: str, message_id: int) -> None:
    """A message was deleted: a file no other message uses is removed
    CHAT_FILE_GRACE seconds from now (files_cleanup)."""
    uses = list(FileUse.objects.filter(stream=stream, message_id=message_id).values_list("file_id", flat=True))
    if not uses:
        return
    FileUse.objects.filter(stream=stream, message_id=message_id).delete()
    StoredFile.objects.filter(id__in=uses, uses=None).update(orphaned_at=timezone.now())


def files_cleanup(now: datetime | None = None) -> int:
    """Remove the files no message has used for CHAT_FILE_GRACE seconds
    (never sent, or their messages deleted). The number removed."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CHAT_FILE_GRACE)
    removed = 0
    for stored in StoredFile.objects.filter(orphaned_at__lte=cutoff, uses=None)[:500]:
        with transaction.atomic():
            # Not taken into a message meanwhile.
            if not StoredFile.objects.filter(id=stored.id, orphaned_at__lte=cutoff, uses=None).delete()[0]:
                continue
        _delete_blobs(stored)
        removed += 1
    return removed


def stray_blobs_remove(now: datetime | None = None) -> int:
    """Remove what the storage holds under files/ that no upload row names
    (a process that died between saving the bytes and the row), once older
    than CHAT_FILE_GRACE seconds. The number removed."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CHAT_FILE_GRACE)
    known: set[str] = set()
    for blob, thumbnail in StoredFile.objects.values_list("blob", "thumbnail_blob").iterator():
        known.update((blob, thumbnail))
    removed = 0
    try:
        folders, _ = default_storage.listdir("files")
    except FileNotFoundError:
        return 0
    for folder in folders:
        for name in default_storage.listdir(f"files/{folder}")[1]:
            path = f"files/{folder}/{name}"
            if path not in known and default_storage.get_modified_time(path) <= cutoff:
                default_storage.delete(path)
                removed += 1
    return removed


def _delete_blobs(stored: StoredFile) -> None:
    for name in (stored.blob, stored.thumbnail_blob):
        if name:
            try:
                default_storage.delete(name)
            except Exception:
                logger.exception("could not delete %s from the storage", name)
