"""The HTTP API's request parser (imported by DRF settings: keep it free of
other project imports to avoid import cycles)."""

from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from wire import jsonutil


class JSONParser(BaseParser):
    """Request bodies parsed by orjson (the project's one JSON codec): it
    refuses what would otherwise be a 500 or a surprise -- nesting past 1024
    levels, lone surrogates, NaN/Infinity and 1e999."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = jsonutil.loads(stream.read() if stream is not None else b"")
        except jsonutil.JSONDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if _depth_exceeds(data, MAX_DEPTH):
            raise exceptions.ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        return data


# No request body of this API nests deeper; DRF's validators recurse on what
# they are given, so a deep body must stop here.
MAX_DEPTH = 32


def _depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False
