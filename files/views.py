"""Serving uploads to the members of their channel or conversation only (404
to anyone else, logged in or not): the bytes from the storage through
FileResponse, with single byte ranges for large files, streamed a chunk at a
time (files.blobs). Images inline with
their type; everything else as an attachment; `nosniff` on every answer."""

from __future__ import annotations

import re
from typing import cast
from urllib.parse import quote

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_safe

from accounts.models import User
from files import blobs
from files.models import StoredFile
from messagepal.selectors import access_conversation
from wire.errors import ChatError
from workspace_chat.selectors import access_channel

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _readable(request: HttpRequest, file_id: str) -> StoredFile:
    stored = StoredFile.objects.filter(id=file_id).first() if request.user.is_authenticated else None
    if stored is None:
        raise Http404("No such file.")
    user = cast(User, request.user)
    try:
        if stored.channel_id is not None:
            access_channel(user, stored.channel_id)
        else:
            access_conversation(user, stored.conversation_id)
    except ChatError:
        raise Http404("No such file.") from None
    return stored


def _headers(response: HttpResponseBase, *, content_type: str, inline: bool, name: str) -> HttpResponseBase:
    response["Content-Type"] = content_type
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(name, safe='')}"
    response["Cache-Control"] = "private, max-age=3600"
    response["Accept-Ranges"] = "bytes"
    return response


@require_safe
def file_download(request: HttpRequest, file_id: str, name: str) -> HttpResponseBase:
    stored = _readable(request, file_id)
    if name != stored.name:
        raise Http404("No such file.")
    # Only the four image types are shown; everything else (HTML and SVG
    # included: sniffed as application/octet-stream) is downloaded.
    content_type = stored.content_type if stored.is_image else (stored.content_type or "application/octet-stream")
    size = blobs.size(stored.blob)
    wanted = _RANGE.match(request.headers.get("Range", ""))
    if wanted and (wanted.group(1) or wanted.group(2)):
        start, end = _byte_range(wanted.group(1), wanted.group(2), size)
        if start is None:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return _headers(response, content_type=content_type, inline=stored.is_image, name=stored.name)
        partial = FileResponse(blobs.stream(stored.blob, start, end), status=206)
        partial["Content-Range"] = f"bytes {start}-{end}/{size}"
        partial["Content-Length"] = str(end - start + 1)
        return _headers(partial, content_type=content_type, inline=stored.is_image, name=stored.name)
    whole = FileResponse(blobs.stream(stored.blob, 0, size - 1))
    whole["Content-Length"] = str(size)
    return _headers(whole, content_type=content_type, inline=stored.is_image, name=stored.name)


@require_safe
def file_thumbnail(request: HttpRequest, file_id: str, ext: str) -> HttpResponseBase:
    stored = _readable(request, file_id)
    if not stored.thumbnail_blob or not stored.thumbnail_blob.endswith("." + ext):
        raise Http404("No such file.")
    size = blobs.size(stored.thumbnail_blob)
    response = FileResponse(blobs.stream(stored.thumbnail_blob, 0, size - 1))
    response["Content-Length"] = str(size)
    return _headers(response, content_type="image/png" if ext == "png" else "image/jpeg", inline=True, name=f"thumbnail.{ext}")


def _byte_range(first: str, last: str, size: int) -> tuple[int | None, int]:
    """RFC 9110 single range: (start, end inclusive), or (None, 0) when unsatisfiable."""
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # the last N bytes
        n = int(last)
        start, end = max(0, size - n), size - 1
        if n == 0:
            return None, 0
    if start >= size or start > end:
        return None, 0
    return start, end
