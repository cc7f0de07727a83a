"""`manage.py makemessages` that also finds the messages of the errors the
services raise (wire.errors, wire.protocol, DRF's ValidationError): they are
English msgids, translated on the way out (wire.i18n). docs/i18n.md.

Those keywords also catch what is not a message: f-strings (formatted before
anyone could translate them: they stay English), the field names of
`ValidationError({"field": [...]})` and `NotFound("")`. They are left out of
the catalog before it is merged into each language's .po file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.management.commands.makemessages import Command as DjangoMakeMessages

ERROR_KEYWORDS = [
    "NotFound",
    "Forbidden",
    "Invalid:2",
    "RateLimited:1",
    "TooLarge",
    "StoreUnavailable",
    "ChatError",
    "ProtocolError:2",
    "bad_request",
    "ValidationError",
]
# An f-string's placeholder ({name}) or a bare identifier (a field name).
NOT_A_MESSAGE = re.compile(r"\{[^}]*\}|^[a-z][A-Za-z_]*$|^$")


def _msgid(entry: str) -> str | None:
    """The msgid of one .pot entry, its continuation lines joined."""
    lines = entry.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("msgid "):
            parts = [line[len("msgid ") :]]
            for more in lines[index + 1 :]:
                if not more.startswith('"'):
                    break
                parts.append(more)
            return "".join(part[1:-1] for part in parts)
    return None


def drop_non_messages(text: str) -> str:
    entries = text.split("\n\n")
    kept = [entries[0]]  # the header
    for entry in entries[1:]:
        msgid = _msgid(entry)
        if msgid is not None and "msgid_plural" not in entry and "msgctxt" not in entry and NOT_A_MESSAGE.search(msgid):
            continue
        kept.append(entry)
    return "\n\n".join(kept)


class Command(DjangoMakeMessages):
    xgettext_options = [*DjangoMakeMessages.xgettext_options, *(f"--keyword={keyword}" for keyword in ERROR_KEYWORDS)]

    def write_po_file(self, potfile: str, locale: str) -> Any:
        if self.domain == "django":
            path = Path(potfile)
            path.write_text(drop_non_messages(path.read_text(encoding="utf-8")), encoding="utf-8")
        return super().write_po_file(potfile, locale)
