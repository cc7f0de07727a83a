"""Image re-encoding off the server's event loop and GIL: each upload's
image is decoded and written again (files.content.reencode) in a separate
worker process, CHAT_IMAGE_WORKERS of them (default 1) at a lower CPU
priority (CHAT_IMAGE_NICE). One process decoding one image at a time bounds
the memory a burst of photos takes (a 12-megapixel bitmap is about 50 MB)
and keeps it out of the server process, and the chat's event loop never
waits for the GIL behind a decoder: measured in bench/upload_bench.py
(docs/files.md)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import tempfile
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile

from files import content, turns

_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_slots: threading.BoundedSemaphore | None = None


class ReencodedFile(File):
    """The re-encoded image on disk: FileSystemStorage moves it into place
    (it has `temporary_file_path`), other storages read it."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def _lower_priority(nice: int) -> None:
    if nice:
        os.nice(nice)


def _executor() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn: forking a server with running threads and a reactor is unsafe.
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=settings.CHAT_IMAGE_WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority,
                initargs=(settings.CHAT_IMAGE_NICE,),
            )
        return _pool


def _free_worker() -> threading.BoundedSemaphore:
    """One per worker process: an upload waits here for a free worker, so
    CHAT_IMAGE_TIMEOUT counts the image's own time, not the queue's."""
    global _slots
    with _lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings.CHAT_IMAGE_WORKERS)
        return _slots


def _discard(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """A worker that hangs or died: kill its processes, start afresh next time."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    processes = list((getattr(pool, "_processes", None) or {}).values())  # None once shut down
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()


def reencode(upload: UploadedFile, content_type: str) -> tuple[content.Picture, ReencodedFile]:
    """The upload's image re-encoded into a temporary file (the caller saves
    it and then calls `discard`). ImageTooLarge, or ValueError when it does
    not decode or takes longer than CHAT_IMAGE_TIMEOUT seconds."""
    path = getattr(upload, "temporary_file_path", None)
    if path is not None:
        source: str | bytes = path()
    else:  # a small upload Django kept in memory
        upload.seek(0)
        source = upload.read()
    fd, dest = tempfile.mkstemp(prefix="chat-image-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    os.close(fd)
    # The wait for the worker and its work are another process's CPU: this
    # upload's turn goes to the next one meanwhile.
    turns.step_aside()
    try:
        with _free_worker():
            picture = _run(content.reencode, source, dest, content_type, settings.CHAT_MAX_IMAGE_PIXELS)
    except BaseException:
        _remove(dest)
        raise
    return picture, ReencodedFile(open(dest, "rb"), name=dest)  # closed by discard


def _run(*call: Any) -> content.Picture:
    for attempt in (1, 2):
        pool = _executor()
        try:
            future = pool.submit(*call)
        except RuntimeError:  # shut down by another upload's _discard: a new pool
            _discard(pool)
            continue
        try:
            return future.result(timeout=settings.CHAT_IMAGE_TIMEOUT)
        except concurrent.futures.TimeoutError:
            _discard(pool)
            raise ValueError("the image took too long to decode") from None
        except BrokenProcessPool:
            _discard(pool)
            if attempt == 2:
                raise ValueError("the image worker died decoding it") from None
    raise ValueError("no image worker")


def discard(file: ReencodedFile) -> None:
    file.close()
    _remove(str(file.name))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # moved into the storage
