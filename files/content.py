"""What an upload is, decided from its bytes (never from the client's
Content-Type or the file name), and images made safe: decoded and
re-encoded with Pillow, which drops EXIF/GPS, with a thumbnail. Pure: no
database, no storage."""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

# Exactly these are images (shown inline); everything else is an attachment.
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
OCTET_STREAM = "application/octet-stream"
THUMBNAIL_SIZE = 400
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
MAX_NAME = 200


class ImageTooLarge(Exception):
    """A decompression bomb, or simply more pixels than CHAT_MAX_IMAGE_PIXELS."""


def safe_name(name: str) -> str:
    """The user's file name without a path, control or bidi-override
    characters (a "gnp.exe" spoof), Unicode kept (NFC), at most 200
    characters with its extension."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().lstrip(".").strip()
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) <= 16 else name[:MAX_NAME]
    return name or "file"


def sniff(head: bytes) -> str:
    """The content type the bytes say, or application/octet-stream. Text
    formats (HTML, SVG, scripts) are not recognised, so they are never
    served as what they claim."""
    kind = filetype.guess(head)
    if kind is None or kind.mime in ("text/html", "image/svg+xml", "application/xhtml+xml"):
        return OCTET_STREAM
    return kind.mime


@dataclass(frozen=True)
class Picture:
    """A re-encoded image (written to the `dest` file given) and its thumbnail."""

    size: int
    width: int
    height: int
    thumbnail: bytes
    thumbnail_type: str


def reencode(source: str | bytes, dest: str, content_type: str, max_pixels: int) -> Picture:
    """Decode the image (a file path, or the bytes of a small one) fully and
    write it again in its own format, without its metadata, to the file
    `dest`. ImageTooLarge past `max_pixels`; ValueError when it does not
    decode (a corrupt or disguised file). Runs in files.imaging's worker
    process: no Django settings here."""
    fmt = IMAGE_TYPES[content_type]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=[fmt]) as image:
                if image.width * image.height > max_pixels:
                    raise ImageTooLarge(f"{image.width}x{image.height}")
                frames = getattr(image, "n_frames", 1)
                with open(dest, "wb") as out:
                    if fmt == "GIF" and frames > 1:
                        return _animated_gif(image, out)
                    image.load()
                    ImageOps.exif_transpose(image, in_place=True)
                    _encode(image, fmt, out)
                    return Picture(out.tell(), image.width, image.height, *_thumbnail(image))
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageTooLarge(str(exc)) from None
        except ImageTooLarge:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            raise ValueError(f"not a decodable {fmt}: {exc}") from None


def _encode(image: Image.Image, fmt: str, out: IO[bytes]) -> None:
    if fmt == "JPEG":
        (image if image.mode == "RGB" else image.convert("RGB")).save(out, "JPEG", quality=90)
    elif fmt == "PNG":
        image.save(out, "PNG")
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=90)
    else:
        image.save(out, "GIF")


def _animated_gif(image: Image.Image, out: IO[bytes]) -> Picture:
    image.save(out, "GIF", save_all=True, loop=image.info.get("loop", 0), duration=image.info.get("duration", 100))
    image.seek(0)
    first = image.convert("RGBA")
    return Picture(out.tell(), image.width, image.height, *_thumbnail(first))
def _thumbnail(image: Image.Image) -> tuple[bytes, str]:
    """At most 400 px on its long side: PNG where there may be transparency, else JPEG."""
    scale = THUMBNAIL_SIZE / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # Straight to the small size (no full-size copy); reducing_gap decodes
    # in steps, much faster than one large resample.
    small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) if scale < 1 else image
    out = io.BytesIO()
    if small.mode in ("RGBA", "LA", "P", "PA") or "transparency" in small.info:
        small.convert("RGBA").save(out, "PNG")
        return out.getvalue(), "image/png"
    small.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue(), "image/jpeg"
