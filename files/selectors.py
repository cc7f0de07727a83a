"""Reads of files: which upload a message's `fileUrl` names, and the file
objects of a page of messages (one query). Access checks are the services'
and views' (they know channels and conversations)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from django.conf import settings

from files.models import StoredFile
from files.schema import FileObject

PREFIX = "/files/"
THUMBNAILS = "/files/thumbnails/"


def local_file_id(url: str | None) -> str | None:
    """The upload a `fileUrl` names when it is this site's `/files/{id}/{name}`
    (a path, or an absolute URL of CHAT_SITE_URL); None for anything else."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        site = urlsplit(settings.CHAT_SITE_URL)
        if (parts.scheme, parts.netloc) != (site.scheme, site.netloc):
            return None
    path = parts.path
    if not path.startswith(PREFIX) or path.startswith(THUMBNAILS):
        return None
    file_id, _, _name = path[len(PREFIX) :].partition("/")
    return file_id or None


def file_url(file: StoredFile) -> str:
    return f"{PREFIX}{file.id}/{quote(file.name, safe='')}"


def thumbnail_url(file: StoredFile) -> str | None:
    if not file.thumbnail_blob:
        return None
    return f"{THUMBNAILS}{file.id}.{'png' if file.thumbnail_blob.endswith('.png') else 'jpg'}"


def file_object(file: StoredFile) -> FileObject:
    return FileObject(
        id=file.id,
        url=file_url(file),
        name=file.name,
        size=file.size,
        contentType=file.content_type,
        isImage=file.is_image,
        width=file.width,
        height=file.height,
        thumbnailUrl=thumbnail_url(file),
    )


def file_objects(urls: Iterable[str | None]) -> dict[str, FileObject]:
    """fileUrl -> its file object, for the urls that name an upload (one query)."""
    ids = {url: file_id for url in urls if url and (file_id := local_file_id(url))}
    if not ids:
        return {}
    files = {f.id: f for f in StoredFile.objects.filter(id__in=set(ids.values()))}
    return {url: file_object(files[file_id]) for url, file_id in ids.items() if file_id in files}
