"""What search answers (PROTOCOL.md part 2, "Search"): a page of message
objects as history builds them, each with an optional `highlight`. Pure."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from messagepal.schema import PalMessageObject
from workspace_chat.schema import MessageObject


class SearchResult(MessageObject):
    # The content with each matching word wrapped in [[ and ]].
    highlight: NotRequired[str]


class PalSearchResult(PalMessageObject):
    highlight: NotRequired[str]


class SearchPage(TypedDict):
    results: list[SearchResult]
    hasMore: bool


class PalSearchPage(TypedDict):
    results: list[PalSearchResult]
    hasMore: bool
