"""The search index: one row per visible message of every stream, whichever
message store holds it. On PostgreSQL `vector` is the message's words,
unaccented, as a tsvector (GIN-indexed); on SQLite the FTS5 table
`search_fts` (created by the migration) mirrors `text`, kept by triggers."""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models


class SearchEntry(models.Model):
    stream = models.CharField(max_length=64)
    message_id = models.BigIntegerField()
    # What the access filter joins on: a channel stream's channel, or a
    # MessagePal stream's conversation (its id is the stream).
    channel_id = models.BigIntegerField(null=True, blank=True)
    conversation_id = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001 - null: a channel's entry has none
    author_id = models.BigIntegerField()
    created_at = models.DateTimeField()
    text = models.TextField()
    vector = SearchVectorField(null=True, blank=True)

    class Meta:
        db_table = "search_entry"
        constraints = [models.UniqueConstraint(fields=["stream", "message_id"], name="search_entry_once")]
        indexes = [
            models.Index(fields=["channel_id", "message_id"], name="search_entry_channel"),
            models.Index(fields=["conversation_id", "message_id"], name="search_entry_conversation"),
            models.Index(fields=["message_id"], name="search_entry_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.stream}#{self.message_id}"
