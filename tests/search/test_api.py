"""GET /api/search/ (PROTOCOL.md part 2, "Search"): words, accents, prefix,
access at the moment of the query, edits, deletes, hidden messages, paging,
the highlight, and hostile queries. On SQLite (FTS5) and PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from messagestore import moderation
from tests.schemas import check_message
from workspace_chat import lifecycle, membership, services
from workspace_chat.services import message_moderate

pytestmark = pytest.mark.django_db


def search(user, q: str, status: int = 200, **params: Any) -> Any:
    client = Client()
    client.force_login(user)
    response = client.get("/api/search/?" + urlencode({"q": q, **params}))
    assert response.status_code == status, (q, params, response.status_code, response.content[:300])
    body = response.json()
    if status == 200:
        assert set(body) == {"results", "hasMore"} and isinstance(body["hasMore"], bool)
        for result in body["results"]:
            check_message({k: v for k, v in result.items() if k != "highlight"})
    return body


def found(user, q: str, **params: Any) -> list[str]:
    return [r["content"] for r in search(user, q, **params)["results"]]


def send(user, channel, content: str) -> dict[str, Any]:
    return services.message_send(user=user, channel_id=channel.id, content=content).message


def test_every_word_must_match_and_the_last_is_a_prefix(school):
    send(school.alice, school.general, "The assignment is due on Friday")
    send(school.alice, school.general, "Friday is a holiday")
    send(school.alice, school.general, "assignments are graded")
    assert found(school.carol, "assignment friday") == ["The assignment is due on Friday"]
    assert found(school.carol, "friday assign") == ["The assignment is due on Friday"]
    assert found(school.carol, "assign") == ["assignments are graded", "The assignment is due on Friday"]
    assert found(school.carol, "FRIDAY") == ["Friday is a holiday", "The assignment is due on Friday"]
    # Whole words: only the last is a prefix.
    assert found(school.carol, "assign friday") == []
    assert found(school.carol, "holi") == ["Friday is a holiday"]
    assert found(school.carol, "oliday") == []


def test_accents_and_case_do_not_matter_either_way(school):
    send(school.alice, school.general, "Meet at the café")
    send(school.alice, school.general, "the cafe is closed")
    send(school.alice, school.general, "CRÈME brûlée")
    assert found(school.carol, "café") == ["the cafe is closed", "Meet at the café"]
    assert found(school.carol, "CAFE") == ["the cafe is closed", "Meet at the café"]
    assert found(school.carol, "creme brulee") == ["CRÈME brûlée"]
    assert found(school.carol, "crème brû") == ["CRÈME brûlée"]


def test_a_result_is_the_message_as_history_shows_it_with_a_highlight(school):
    sent = send(school.alice, school.general, "Homework: read chapter 3 at home")
    lifecycle.reaction_set(user=school.carol, channel_id=school.general.id, message_id=sent["id"], emoji="👍", add=True)
    (result,) = search(school.carol, "hom")["results"]
    history = services_history(school.carol, school.general.id)
    assert {k: v for k, v in result.items() if k != "highlight"} == history[-1]
    assert result["highlight"] == "[[Homework]]: read chapter 3 at [[home]]"
    assert result["reactions"][0]["emoji"] == "👍"


def services_history(user, channel_id: int) -> list[dict[str, Any]]:
    client = Client()
    client.force_login(user)
    return client.get(f"/api/channels/{channel_id}/messages/").json()["results"]


def test_only_channels_the_caller_may_read(school, make_user):
    send(school.alice, school.general, "secret plan public")
    send(school.alice, school.staff, "secret plan staff")
    dm, _ = services.dm_get_or_create(actor=school.alice, workspace_id=school.workspace.id, user_id=school.bob.id)
    send(school.alice, dm, "secret plan dm")
    # Another workspace, with a public channel carol is not in.
    erin = make_user("erin")
    other = services.workspace_create(user=erin, name="Other").workspace
    lounge = services.channel_create(actor=erin, workspace_id=other.id, name="lounge", kind="text", is_private=False)
    send(erin, lounge, "secret plan elsewhere")
    assert found(school.alice, "secret plan") == ["secret plan dm", "secret plan staff", "secret plan public"]
    assert found(school.bob, "secret plan") == ["secret plan dm", "secret plan public"]
    assert found(school.carol, "secret plan") == ["secret plan public"]
    assert found(school.dave, "secret plan") == []
    assert found(erin, "secret plan") == ["secret plan elsewhere"]


def test_a_removed_member_stops_finding_at_once(school):
    membership.channel_member_add(actor=school.alice, channel_id=school.staff.id, user_id=school.carol.id)
    send(school.alice, school.staff, "staff meeting notes")
    send(school.alice, school.general, "general meeting notes")
    assert found(school.carol, "meeting") == ["general meeting notes", "staff meeting notes"]
    membership.channel_member_remove(actor=school.alice, channel_id=school.staff.id, user_id=school.carol.id)
    assert found(school.carol, "meeting") == ["general meeting notes"]
    search(school.carol, "meeting", 404, channelId=school.staff.id)
    membership.member_remove(actor=school.alice, workspace_id=school.workspace.id, user_id=school.carol.id)
    assert found(school.carol, "meeting") == []
    search(school.carol, "meeting", 404, workspaceId=school.workspace.id)


def test_channel_and_workspace_filters(school, make_user):
    send(school.alice, school.general, "lunch menu general")
    send(school.alice, school.news, "lunch menu news")
    assert found(school.carol, "lunch", channelId=school.news.id) == ["lunch menu news"]
    assert found(school.carol, "lunch", workspaceId=school.workspace.id) == ["lunch menu news", "lunch menu general"]
    erin = make_user("erin")
    other = services.workspace_create(user=erin, name="Other").workspace
    services.workspace_member_add(actor=erin, workspace_id=other.id, username="carol", role="student")
    lounge = services.channel_create(actor=erin, workspace_id=other.id, name="lounge", kind="text", is_private=False)
    send(erin, lounge, "lunch menu other")
    assert found(school.carol, "lunch") == ["lunch menu other", "lunch menu news", "lunch menu general"]
    assert found(school.carol, "lunch", workspaceId=other.id) == ["lunch menu other"]
    # A channel of another workspace than the one named, or one not readable: 404.
    search(school.carol, "lunch", 404, workspaceId=school.workspace.id, channelId=lounge.id)
    search(school.carol, "lunch", 404, channelId=school.staff.id)
    search(school.carol, "lunch", 404, channelId=987654321)
    search(school.dave, "lunch", 404, workspaceId=school.workspace.id)


def test_edits_are_found_by_their_new_text_only(school):
    sent = send(school.carol, school.general, "the answer is seven")
    lifecycle.message_edit(user=school.carol, channel_id=school.general.id, message_id=sent["id"], content="the answer is eight")
    assert found(school.alice, "seven") == []
    (result,) = search(school.alice, "eight")["results"]
    assert result["content"] == "the answer is eight" and result["editedAt"] is not None


def test_deleted_and_hidden_messages_are_never_found(school):
    gone = send(school.carol, school.general, "oops wrong channel")
    hidden = send(school.carol, school.general, "oops rude words")
    send(school.carol, school.general, "oops fine")
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=gone["id"])
    assert message_moderate(channel_id=school.general.id, message_id=hidden["id"], action="hide", actor_id=school.alice.id)
    assert found(school.alice, "oops") == ["oops fine"]
    # Shown again by a moderator: found again.
    assert moderation.message_moderate(stream=school.general.stream, message_id=hidden["id"], action="unhide", actor_id=school.alice.id)
    assert found(school.alice, "oops") == ["oops fine", "oops rude words"]


def test_paging_newest_first_with_before(school):
    sent = [send(school.alice, school.general, f"page test number {i}")["id"] for i in range(7)]
    first = search(school.carol, "page test", limit=3)
    assert [r["id"] for r in first["results"]] == sent[::-1][:3] and first["hasMore"]
    second = search(school.carol, "page test", limit=3, before=first["results"][-1]["id"])
    assert [r["id"] for r in second["results"]] == sent[::-1][3:6] and second["hasMore"]
    third = search(school.carol, "page test", limit=3, before=second["results"][-1]["id"])
    assert [r["id"] for r in third["results"]] == sent[:1] and not third["hasMore"]


def test_limit_defaults_to_20_and_is_capped_at_50(school):
    for i in range(55):
        send(school.alice, school.general, f"many {i}")
    assert len(search(school.carol, "many")["results"]) == 20
    body = search(school.carol, "many", limit=500)
    assert len(body["results"]) == 50 and body["hasMore"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": ""}, "q"), ({"q": "a"}, "q"), ({"q": " x "}, "q"), ({"q": "ok", "limit": "0"}, "limit"), ({"q": "ok", "before": "x"}, "before"), ({"q": "ok", "channelId": "-1"}, "channelId")],
)
def test_bad_parameters_are_400_with_field_errors(school, params, field):
    client = Client()
    client.force_login(school.carol)
    response = client.get("/api/search/?" + urlencode(params))
    assert response.status_code == 400 and field in response.json()["errors"], response.content


def test_anonymous_is_403(school):
    assert Client().get("/api/search/?q=hello").status_code == 403
    assert Client().get("/api/messagepal/search/?q=hello").status_code == 403


HOSTILE = [
    "NEAR(a b)", "NEAR(a b, 2)", "a NEAR b", "*", "**", "a*", "*a", '"', '""', '"unbalanced', "'", "''", "a'b", "-", "-a", "a -b", "^a", "a^",
    "content:a", "text:a", "search_fts:a", "{text}:a", "a AND", "OR b", "NOT a", "a OR OR b", "(a", "a)", "()", "a & b", "a | b", "!a", "!!",
    "a <-> b", "a <2> b", "a:*", "a:* & b:AB", "a:A", "\\", "a\\b", "\\'", "\x00", "a\x00b", "ab\x00", "%", "%%", "a%b", "_", "__", "a_b",
    "😀😀", "😀 hi", "שלום עולם", "مرحبا بالعالم", "\u202eabc", "ab\u200b", "x" * 499, "x" * 500, "x" * 501, "word " * 16, "word " * 17,
    "ｃａｆé", "İstanbul", "ß", "ǅ", "١٢٣", "a" + "\u0301" * 50, "\ud7ff\ue000", "\t\n\r", "<script>", "'; DROP TABLE search_entry; --",
]


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_are_200_or_400_never_500(school, q):
    send(school.alice, school.general, "a b ab a_b café hi word x")
    client = Client()
    client.force_login(school.carol)
    for path in ("/api/search/", "/api/messagepal/search/"):
        response = client.get(path, {"q": q})
        assert response.status_code in (200, 400), (path, q, response.status_code, response.content[:300])
        if response.status_code == 400:
            assert "q" in response.json()["errors"]
