"""The stored bytes of uploads as the download views send them: one byte
range at a time, in chunks read in a worker thread each, as an async
iterator. Django's ASGI handler reads a synchronous response iterator whole
into memory before sending it (a 25 MB download would sit in the server's
RSS); this one holds a chunk. From FileSystemStorage a file read from its
offset; from S3 (django-storages) a ranged GetObject streamed from the
object store, never the whole object fetched first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.storage import Storage, default_storage

CHUNK = 256 * 1024


def is_s3(storage: Storage) -> bool:
    from storages.backends.s3 import S3Storage

    return isinstance(storage, S3Storage)


def size(name: str) -> int:
    return default_storage.size(name)


def _chunks(name: str, start: int, end: int) -> Generator[bytes]:
    """Bytes start..end (inclusive) of a stored file, in chunks."""
    storage = default_storage
    if is_s3(storage):
        s3: Any = getattr(storage, "_wrapped", storage)  # default_storage is a lazy wrapper
        body = s3.bucket.Object(s3._normalize_name(name)).get(Range=f"bytes={start}-{end}")["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()
        return
    with storage.open(name, "rb") as handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            data = handle.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data


async def stream(name: str, start: int, end: int) -> AsyncIterator[bytes]:
    chunks = _chunks(name, start, end)
    step = sync_to_async(_next, thread_sensitive=False)
    try:
        while (data := await step(chunks)) is not None:
            yield data
    finally:
        await sync_to_async(chunks.close, thread_sensitive=False)()


def _next(chunks: Generator[bytes]) -> bytes | None:
    return next(chunks, None)
