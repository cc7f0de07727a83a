"""The language of error messages meant for people (docs/i18n.md).

Services raise errors with English messages (the msgids); the transports
translate them on the way out: the DRF exception handler in the request's
language (LocaleMiddleware), the consumers in the language their connection
chose at connect time (`language_from_scope`). Error codes and field names
never change. A message built with an f-string has no msgid and stays English.
`manage.py makemessages` (chatsite's override) extracts the literal messages
of `NotFound(...)`, `Forbidden(...)`, `Invalid(field, ...)` and their kin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header


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
    """`message` in `language` (default: the active one) when the catalog has it."""
    if not message:
        return message
    if language is None:
        return translation.gettext(message)
    with translation.override(language):
        return translation.gettext(message)


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
