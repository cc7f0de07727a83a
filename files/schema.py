"""The file object of PROTOCOL.md part 2, "Files"."""

from __future__ import annotations

from typing import TypedDict


class FileObject(TypedDict):
    id: str
    url: str
    name: str
    size: int
    contentType: str
    isImage: bool
    width: int | None
    height: int | None
    thumbnailUrl: str | None
