"""The language of error messages meant for people (docs/i18n.md).

Services raise errors with English messages (the msgids); the transports
translate them on the way out: the DRF exception handler in the request's
language (LocaleMiddleware), the consumers in the language their connection
chose at connect time (`language_from_scope`). Error codes and field names
never change. A message built with an f-string has no msgid of its own: the
common ones match a template of `TEMPLATES` (their values are kept as they
are); any other stays English.
`manage.py makemessages` (chatsite's override) extracts the literal messages
of `NotFound(...)`, `Forbidden(...)`, `Invalid(field, ...)` and their kin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_noop
from django.utils.translation.trans_real import parse_accept_lang_header

# The messages the services format with values (f-strings), as msgids.
TEMPLATES = [
    gettext_noop("Field '%(name)s' is required."),
    gettext_noop("Field '%(name)s' must be a string."),
    gettext_noop("Field '%(name)s' must be an integer from %(minimum)s to 2^53-1."),
    gettext_noop("Field '%(name)s' must be at most %(limit)s characters."),
    gettext_noop("Field '%(name)s' must be one of %(choices)s."),
    gettext_noop("Unknown event type %(type)s."),
    gettext_noop("Messages can be edited for %(seconds)s seconds after sending."),
    gettext_noop("You are muted in this workspace until %(time)s UTC."),
    gettext_noop("Only admins and teachers can post %(type)s messages."),
    gettext_noop("Must be at most %(limit)s characters."),
    gettext_noop("Must be between %(minimum)s and %(maximum)s."),
    gettext_noop("The file is larger than %(size)s."),
]
_PLACEHOLDER = re.compile(r"%\\\(([a-z_]+)\\\)s")
_MATCHERS = [(re.compile(_PLACEHOLDER.sub(r"(?P<\1>.+?)", re.escape(template)) + r"\Z"), template) for template in TEMPLATES]


def _supported(code: str) -> str | None:
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


def language_from_scope(scope: Mapping[str, Any]) -> str:
    """A WebSocket's language, chosen as LocaleMiddleware chooses a page's:
    the language cookie (the header's picker), else Accept-Language, else
    LANGUAGE_CODE."""
    cookie = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME)
    if cookie and (found := _supported(cookie)):
        return found
    for name, value in scope.get("headers") or ():
        if name.lower() != b"accept-language":
            continue
        for code, _quality in parse_accept_lang_header(value.decode("latin-1")):
            if code == "*":
                break
            if found := _supported(code):
                return found
    return settings.LANGUAGE_CODE


def translate(message: str, language: str | None = None) -> str:
    """`message` in `language` (default: the active one) when the catalog has
    it, or has its template."""
    if not message:
        return message
    if language is None:
        return _translate(message)
    with translation.override(language):
        return _translate(message)


def _translate(message: str) -> str:
    translated = translation.gettext(message)
    if translated != message:
        return translated
    for matcher, template in _MATCHERS:
        found = matcher.match(message)
        if found:
            return translation.gettext(template) % found.groupdict()
    return message


def translate_detail(detail: Any) -> Any:
    """A DRF error detail (str, list or dict of them) in the active language;
    the keys (field names) stay as they are."""
    if isinstance(detail, str):
        return translate(str(detail))
    if isinstance(detail, list):
        return [translate_detail(item) for item in detail]
    if isinstance(detail, dict):
        return {key: translate_detail(value) for key, value in detail.items()}
    return detail
