"""Search reads (PROTOCOL.md part 2, "Search"). One query finds the entries:
the words' match (tsquery on PostgreSQL, FTS5 MATCH on SQLite) and the
access filter (a subquery of the channels or conversations the caller may
read now) together, newest first, `limit + 1` rows. The results are then
built from the message store, as history builds them, so edits, reactions
and grades are current."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from accounts.models import User
from messagepal.models import Conversation
from messagepal.selectors import message_objects as pal_message_objects
from messagepal.selectors import reachable_users
from messagestore import StoredMessage, get_store
from search import terms
from search.models import SearchEntry
from search.schema import PalSearchResult, SearchResult
from workspace_chat.models import STAFF_ROLES, Channel, ChannelKind, ChannelMembership, WorkspaceMembership
from workspace_chat.selectors import ChannelInaccessible, Viewer, access_channel, access_workspace, message_objects

DEFAULT_LIMIT = 20
MAX_LIMIT = 50


@dataclass(frozen=True)
class Hit:
    stream: str
    message_id: int
    channel_id: int | None


def readable_channels(user: User, *, workspace_id: int | None = None, channel_id: int | None = None) -> QuerySet[Channel]:
    """The channels `user` may read now, as access_channel decides: public
    ones of their workspaces, private channels and DMs they are members of."""
    member = ChannelMembership.objects.filter(channel=OuterRef("pk"), user_id=user.id)
    channels = Channel.objects.filter(
        Q(is_private=False, kind__in=[ChannelKind.TEXT, ChannelKind.ANNOUNCEMENT]) | Q(Exists(member)),
        workspace_id__in=WorkspaceMembership.objects.filter(user_id=user.id).values("workspace_id"),
    )
    if workspace_id is not None:
        channels = channels.filter(workspace_id=workspace_id)
    if channel_id is not None:
        channels = channels.filter(pk=channel_id)
    return channels


def readable_conversations(user: User) -> QuerySet[Conversation]:
    """The caller's conversations with someone they can still reach."""
    reachable = reachable_users(user)
    return Conversation.objects.filter(Q(user_low=user, user_high__in=reachable) | Q(user_high=user, user_low__in=reachable))


def lexemes(query: terms.Query) -> list[str]:
    """The query's words as PostgreSQL's unaccent folds them (as the index
    was built), cut into words again: nothing unaccent makes can be syntax."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT unaccent(%s)", [" ".join(query.terms)])
        (folded,) = cursor.fetchone()
    return terms.words(folded)


def matching(entries: QuerySet[SearchEntry], query: terms.Query) -> QuerySet[SearchEntry]:
    if connection.vendor == "postgresql":
        found = lexemes(query)
        if not found:
            return entries.none()
        return entries.filter(vector=SearchQuery(terms.tsquery(found), search_type="raw", config="simple"))
    return entries.filter(id__in=RawSQL("SELECT rowid FROM search_fts WHERE search_fts MATCH %s", [terms.fts5_match(query)]))


def find(entries: QuerySet[SearchEntry], query: terms.Query, *, before: int | None, limit: int) -> tuple[list[Hit], bool]:
    """The newest `limit` entries that match, below `before`, and whether
    more follow: one query."""
    if query.empty:
        return [], False
    entries = matching(entries, query)
    if before is not None:
        entries = entries.filter(message_id__lt=before)
    rows = list(entries.order_by("-message_id").values_list("stream", "message_id", "channel_id")[: limit + 1])
    return [Hit(*row) for row in rows[:limit]], len(rows) > limit


def channel_hits(user: User, query: terms.Query, *, workspace_id: int | None, channel_id: int | None, before: int | None, limit: int) -> tuple[list[Hit], bool]:
    """Entries of channels the caller may read; the access filter is a
    subquery of the same query."""
    readable = readable_channels(user, workspace_id=workspace_id, channel_id=channel_id).values("pk")
    # Only the channel filter: an entry-level workspace filter (tried, with
    # its own index) made the planner AND the GIN and workspace bitmaps,
    # three times slower for two common words (docs/search.md).
    return find(SearchEntry.objects.filter(channel_id__in=readable), query, before=before, limit=limit)


def _stored(hits: list[Hit]) -> dict[int, StoredMessage]:
    """Each hit's message as the store holds it now (an entry the store no
    longer shows is one a write is about to remove: left out)."""
    store = get_store()
    found = {}
    for hit in hits:
        message = store.get(hit.stream, hit.message_id)
        if message is not None:
            found[hit.message_id] = message
    return found


def search_messages(
    *, user: User, q: str, workspace_id: int | None = None, channel_id: int | None = None, before: int | None = None, limit: int = DEFAULT_LIMIT
) -> tuple[list[SearchResult], bool]:
    """GET /api/search/: raises ValueError for a bad `q`, NotFound for a
    workspace or channel the caller may not read."""
    query = terms.parse_query(q)
    if workspace_id is not None:
        access_workspace(user, workspace_id)
    if channel_id is not None:
        access = access_channel(user, channel_id)
        if workspace_id is not None and access.channel.workspace_id != workspace_id:
            raise ChannelInaccessible("Channel not found.")
    hits, has_more = channel_hits(user, query, workspace_id=workspace_id, channel_id=channel_id, before=before, limit=max(1, min(limit, MAX_LIMIT)))
    messages = _stored(hits)
    by_channel: dict[int, list[StoredMessage]] = defaultdict(list)
    for hit in hits:
        if hit.message_id in messages and hit.channel_id is not None:
            by_channel[hit.channel_id].append(messages[hit.message_id])
    workspaces = dict(Channel.objects.filter(pk__in=list(by_channel)).values_list("pk", "workspace_id"))
    roles = dict(WorkspaceMembership.objects.filter(user_id=user.id, workspace_id__in=set(workspaces.values())).values_list("workspace_id", "role"))
    built: dict[int, SearchResult] = {}
    for channel, found in by_channel.items():
        role = roles.get(workspaces.get(channel, 0), "")
        viewer = Viewer(user.id, role in STAFF_ROLES)
        for obj in message_objects(channel, found, viewer=viewer):
            result = SearchResult(**obj)
            marked = terms.highlight(obj["content"], query)
            if marked is not None:
                result["highlight"] = marked
            built[obj["id"]] = result
    return [built[h.message_id] for h in hits if h.message_id in built], has_more


def search_pal_messages(*, user: User, q: str, before: int | None = None, limit: int = DEFAULT_LIMIT) -> tuple[list[PalSearchResult], bool]:
    """GET /api/messagepal/search/: the caller's conversations only."""
    query = terms.parse_query(q)
    entries = SearchEntry.objects.filter(conversation_id__in=readable_conversations(user).values("pk"))
    hits, has_more = find(entries, query, before=before, limit=max(1, min(limit, MAX_LIMIT)))
    messages = _stored(hits)
    by_stream: dict[str, list[StoredMessage]] = defaultdict(list)
    for hit in hits:
        if hit.message_id in messages:
            by_stream[hit.stream].append(messages[hit.message_id])
    built: dict[int, PalSearchResult] = {}
    for found in by_stream.values():
        for message, obj in zip(found, pal_message_objects(found), strict=True):
            result = PalSearchResult(**obj)
            marked = terms.highlight(obj["content"], query)
            if marked is not None:
                result["highlight"] = marked
            built[message.id] = result
    return [built[h.message_id] for h in hits if h.message_id in built], has_more

