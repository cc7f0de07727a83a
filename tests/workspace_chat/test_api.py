"""HTTP API of workspace chat (PROTOCOL.md, "Workspaces, channels, roles"),
plus /api/schema/ and /healthz ("Operations")."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.schemas import check_message
from workspace_chat import services

pytestmark = pytest.mark.django_db

USER_KEYS = {"id", "username", "displayName"}
WORKSPACE_KEYS = {"id", "name", "role"}
CHANNEL_KEYS = {"id", "workspaceId", "name", "kind", "isPrivate"}
LISTED_CHANNEL_KEYS = CHANNEL_KEYS | {"unreadCount", "mentionCount", "lastMessageId"}


@pytest.fixture(autouse=True)
def _fast_and_unlimited(settings):
    # Production password hashing costs ~0.3 s per user; tests send many messages.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHAT_RATE_LIMIT_MESSAGES = 100_000


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def call(client: Client, method: str, url: str, status: int, body: Any = None) -> Any:
    if method == "get":
        response = client.get(url)
    else:
        send = getattr(client, method)  # post, patch, delete
        response = send(url, {} if body is None else body, content_type="application/json")
    assert response.status_code == status, (method, url, response.status_code, response.content[:300])
    return response.json() if response.content and response["Content-Type"].startswith("application/json") else None


def get(user, url: str, status: int = 200) -> Any:
    return call(as_user(user), "get", url, status)


def post(user, url: str, body: Any, status: int) -> Any:
    return call(as_user(user), "post", url, status, body)


def assert_field_error(body: Any, field: str) -> None:
    assert isinstance(body["errors"][field], list) and body["errors"][field], body


def send(user, channel, content: str = "hello", **kw: Any) -> dict[str, Any]:
    channel_id = channel if isinstance(channel, int) else channel.id
    return services.message_send(user=user, channel_id=channel_id, content=content, **kw).message


def ws_url(school, suffix: str = "") -> str:
    return f"/api/workspaces/{school.workspace.id}/{suffix}"


def history(user, channel_id: int, query: str = "", status: int = 200) -> Any:
    body = get(user, f"/api/channels/{channel_id}/messages/{query}", status)
    if status == 200:
        assert set(body) == {"results", "hasMore"} and isinstance(body["hasMore"], bool)
        for message in body["results"]:
            check_message(message)
    return body


def ids(messages: list[dict[str, Any]]) -> list[int]:
    return [m["id"] for m in messages]


# --- workspaces ------------------------------------------------------------------


def test_workspace_create_makes_the_caller_admin_and_lists_it(make_user):
    erin, fred = make_user("erin"), make_user("fred")
    created = post(erin, "/api/workspaces/", {"name": "  Physics  "}, 201)
    assert set(created) == WORKSPACE_KEYS
    assert created["name"] == "Physics" and created["role"] == "admin" and isinstance(created["id"], int)
    assert get(erin, "/api/workspaces/") == [created]
    assert get(fred, "/api/workspaces/") == []


def test_workspace_list_shows_the_callers_role(school):
    for user, role in ((school.alice, "admin"), (school.bob, "teacher"), (school.carol, "student")):
        assert get(user, "/api/workspaces/") == [{"id": school.workspace.id, "name": "School", "role": role}]
    assert get(school.dave, "/api/workspaces/") == []


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}])
def test_workspace_create_bad_name_is_400(make_user, body):
    assert_field_error(post(make_user("erin"), "/api/workspaces/", body, 400), "name")


def test_workspace_endpoints_are_403_when_anonymous(school):
    anonymous = Client()
    call(anonymous, "get", "/api/workspaces/", 403)
    call(anonymous, "post", "/api/workspaces/", 403, {"name": "x"})
    call(anonymous, "get", ws_url(school), 403)
    call(anonymous, "get", f"/api/channels/{school.general.id}/messages/", 403)


def test_workspace_detail_lists_members_with_roles(school):
    body = get(school.carol, ws_url(school))
    assert set(body) == WORKSPACE_KEYS | {"members"}
    assert (body["id"], body["name"], body["role"]) == (school.workspace.id, "School", "student")
    for member in body["members"]:
        assert set(member) == {"user", "role"} and set(member["user"]) == USER_KEYS
    roles = {m["user"]["username"]: m["role"] for m in body["members"]}
    assert roles == {"alice": "admin", "bob": "teacher", "carol": "student"}
    alice = next(m["user"] for m in body["members"] if m["user"]["username"] == "alice")
    assert alice == {"id": school.alice.id, "username": "alice", "displayName": "Alice A"}


def test_workspace_detail_is_the_same_404_for_non_members_and_missing_ids(school):
    hidden = get(school.dave, ws_url(school), 404)
    missing = get(school.dave, "/api/workspaces/999999/", 404)
    assert hidden == missing
    get(school.dave, "/api/workspaces/99999999999999999999/", 404)


# --- members ----------------------------------------------------------------------


def test_admin_adds_a_member_who_then_sees_the_workspace(school):
    body = post(school.alice, ws_url(school, "members/"), {"username": "dave", "role": "teacher"}, 201)
    assert body == {"user": {"id": school.dave.id, "username": "dave", "displayName": "dave"}, "role": "teacher"}
    assert get(school.dave, "/api/workspaces/") == [{"id": school.workspace.id, "name": "School", "role": "teacher"}]
    assert "dave" in {m["user"]["username"] for m in get(school.alice, ws_url(school))["members"]}


def test_add_member_finds_the_username_regardless_of_case(school):
    # Usernames are unique regardless of case (registration refuses "Dave" once "dave" exists).
    body = post(school.alice, ws_url(school, "members/"), {"username": "DAVE", "role": "student"}, 201)
    assert body["user"]["id"] == school.dave.id


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_only_admins_add_members(school, who):
    post(getattr(school, who), ws_url(school, "members/"), {"username": "dave", "role": "student"}, 403)
    get(school.dave, ws_url(school), 404)


def test_adding_a_member_to_a_workspace_you_are_not_in_is_404(school, make_user):
    make_user("erin")
    post(school.dave, ws_url(school, "members/"), {"username": "erin", "role": "student"}, 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "nobody", "role": "student"}, "username"),
        ({"username": "dave", "role": "owner"}, "role"),
        ({"role": "student"}, "username"),
    ],
)
def test_add_member_bad_input_is_400(school, body, field):
    assert_field_error(post(school.alice, ws_url(school, "members/"), body, 400), field)
    get(school.dave, ws_url(school), 404)


# --- channels ---------------------------------------------------------------------


def channel_list(user, school, status: int = 200) -> dict[str, dict[str, Any]]:
    body = get(user, ws_url(school, "channels/"), status)
    if status != 200:
        return body
    by_name = {}
    for channel in body:
        expected = LISTED_CHANNEL_KEYS | ({"memberIds"} if channel["isPrivate"] else set())
        assert set(channel) == expected, channel
        assert channel["workspaceId"] == school.workspace.id
        by_name[channel["name"]] = channel
    return by_name


def test_channel_list_hides_private_channels_from_non_members(school):
    assert set(channel_list(school.alice, school)) == {"general", "news", "staff"}
    assert set(channel_list(school.carol, school)) == {"general", "news"}
    assert set(channel_list(school.bob, school)) == {"general", "news"}
    staff = channel_list(school.alice, school)["staff"]
    assert staff["isPrivate"] is True and staff["memberIds"] == [school.alice.id]
    news = channel_list(school.carol, school)["news"]
    assert news["kind"] == "announcement" and news["isPrivate"] is False
    channel_list(school.dave, school, 404)


def test_channel_list_counts_unread_messages_of_others_after_the_read_pointer(school):
    first = send(school.bob, school.general, "one")
    second = send(school.bob, school.general, "two")
    send(school.alice, school.general, "three")
    last = send(school.bob, school.general, "four")
    empty = channel_list(school.carol, school)["news"]
    assert (empty["unreadCount"], empty["lastMessageId"]) == (0, None)

    def unread(user) -> tuple[int, int]:
        general = channel_list(user, school)["general"]
        return general["unreadCount"], general["lastMessageId"]

    assert unread(school.carol) == (4, last["id"])
    assert unread(school.alice) == (3, last["id"])  # her own message is not unread
    assert unread(school.bob) == (1, last["id"])
    services.read_mark(user=school.carol, channel_id=school.general.id, message_id=second["id"])
    assert unread(school.carol) == (2, last["id"])
    services.read_mark(user=school.carol, channel_id=school.general.id, message_id=first["id"])  # never back
    assert unread(school.carol) == (2, last["id"])
    services.read_mark(user=school.carol, channel_id=school.general.id, message_id=last["id"])
    assert unread(school.carol) == (0, last["id"])


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_admins_and_teachers_create_channels(school, who):
    user = getattr(school, who)
    body = post(user, ws_url(school, "channels/"), {"name": "homework"}, 201)
    assert set(body) == CHANNEL_KEYS
    assert body["workspaceId"] == school.workspace.id
    assert (body["name"], body["kind"], body["isPrivate"]) == ("homework", "text", False)
    assert channel_list(school.carol, school)["homework"]["id"] == body["id"]


def test_created_private_channel_lists_its_creator_and_is_hidden_from_others(school):
    body = post(school.bob, ws_url(school, "channels/"), {"name": "marking", "kind": "announcement", "isPrivate": True}, 201)
    assert set(body) == CHANNEL_KEYS | {"memberIds"}
    assert (body["kind"], body["isPrivate"], body["memberIds"]) == ("announcement", True, [school.bob.id])
    assert "marking" in channel_list(school.bob, school)
    assert "marking" not in channel_list(school.carol, school)
    assert "marking" not in channel_list(school.alice, school)
    history(school.carol, body["id"], status=404)


def test_students_cannot_create_channels(school):
    post(school.carol, ws_url(school, "channels/"), {"name": "party"}, 403)
    post(school.dave, ws_url(school, "channels/"), {"name": "party"}, 404)
    assert "party" not in channel_list(school.alice, school)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "dm"}, "kind"),
        ({"name": "x", "kind": "voice"}, "kind"),
        ({}, "name"),
        ({"name": "x", "isPrivate": "maybe"}, "isPrivate"),
    ],
)
def test_create_channel_bad_input_is_400(school, body, field):
    assert_field_error(post(school.alice, ws_url(school, "channels/"), body, 400), field)
    assert set(channel_list(school.alice, school)) == {"general", "news", "staff"}


# --- DMs ---------------------------------------------------------------------------


def test_dm_is_created_once_and_found_from_either_side(school):
    url = ws_url(school, "dms/")
    created = post(school.carol, url, {"userId": school.bob.id}, 201)
    assert set(created) == CHANNEL_KEYS | {"memberIds"}
    assert (created["kind"], created["isPrivate"], created["workspaceId"]) == ("dm", True, school.workspace.id)
    assert sorted(created["memberIds"]) == sorted([school.bob.id, school.carol.id])
    assert post(school.bob, url, {"userId": school.carol.id}, 200) == created
    assert post(school.carol, url, {"userId": school.bob.id}, 200) == created


def test_dm_is_private_to_its_two_members(school):
    dm = post(school.carol, ws_url(school, "dms/"), {"userId": school.bob.id}, 201)
    message = send(school.bob, dm["id"], "just between us")
    assert ids(history(school.carol, dm["id"])["results"]) == [message["id"]]
    history(school.alice, dm["id"], status=404)  # the workspace admin is a third party
    history(school.dave, dm["id"], status=404)
    get(school.alice, f"/api/channels/{dm['id']}/pins/", 404)
    assert dm["id"] in {c["id"] for c in channel_list(school.bob, school).values()}
    assert dm["id"] not in {c["id"] for c in channel_list(school.alice, school).values()}


@pytest.mark.parametrize("target", ["self", "dave", "missing", "zero", "text"])
def test_dm_with_self_or_a_non_member_is_400(school, target):
    user_id = {"self": school.carol.id, "dave": school.dave.id, "missing": 999999, "zero": 0, "text": "bob"}[target]
    assert_field_error(post(school.carol, ws_url(school, "dms/"), {"userId": user_id}, 400), "userId")
    assert not any(c["kind"] == "dm" for c in channel_list(school.carol, school).values())


def test_dm_in_a_workspace_you_are_not_in_is_404(school):
    post(school.dave, ws_url(school, "dms/"), {"userId": school.bob.id}, 404)


# --- history -------------------------------------------------------------------------


def fill(school, n: int) -> list[int]:
    authors = (school.alice, school.bob, school.carol)
    return [send(authors[i % 3], school.general, f"message {i}")["id"] for i in range(n)]


def test_history_is_oldest_first_with_default_limit_50(school):
    sent = fill(school, 60)
    assert sent == sorted(sent) and len(set(sent)) == 60
    body = history(school.carol, school.general.id)
    assert ids(body["results"]) == sent[-50:]
    assert body["hasMore"] is True
    assert body["results"][-1]["content"] == "message 59"
    assert body["results"][-1]["authorUsername"] == "carol"  # 59 % 3 == 2


def test_history_limit_is_capped_at_100(school):
    sent = fill(school, 120)
    body = history(school.carol, school.general.id, "?limit=500")
    assert ids(body["results"]) == sent[-100:] and body["hasMore"] is True
    assert ids(history(school.carol, school.general.id, "?limit=1")["results"]) == sent[-1:]


def test_history_pages_backward_and_forward_without_gap_or_repeat(school):
    sent = fill(school, 120)
    url = school.general.id
    seen: list[int] = []
    flags = []
    query = "?limit=50"
    while True:
        body = history(school.carol, url, query)
        seen = ids(body["results"]) + seen
        flags.append(body["hasMore"])
        if not body["hasMore"]:
            break
        query = f"?limit=50&before={body['results'][0]['id']}"
    assert seen == sent and flags == [True, True, False]

    seen, flags, after = [], [], 0
    while True:
        body = history(school.carol, url, f"?limit=50&after={after}")
        seen += ids(body["results"])
        flags.append(body["hasMore"])
        if not body["hasMore"]:
            break
        after = body["results"][-1]["id"]
    assert seen == sent and flags == [True, True, False]


def test_history_between_two_cursors(school):
    sent = fill(school, 10)
    body = history(school.carol, school.general.id, f"?after={sent[2]}&before={sent[7]}")
    assert ids(body["results"]) == sent[3:7] and body["hasMore"] is False
    exactly_the_rest = history(school.carol, school.general.id, f"?after={sent[4]}&limit=5")
    assert ids(exactly_the_rest["results"]) == sent[5:] and exactly_the_rest["hasMore"] is False
    exactly_the_start = history(school.carol, school.general.id, f"?before={sent[5]}&limit=5")
    assert ids(exactly_the_start["results"]) == sent[:5] and exactly_the_start["hasMore"] is False
    assert history(school.carol, school.general.id, f"?after={sent[-1]}") == {"results": [], "hasMore": False}


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("?before=abc", "before"),
        ("?before=0", "before"),
        ("?before=99999999999999999999", "before"),
        ("?after=1.5", "after"),
        ("?limit=0", "limit"),
        ("?limit=-3", "limit"),
        ("?limit=ten", "limit"),
    ],
)
def test_history_bad_parameters_are_400_on_the_parameter(school, query, param):
    fill(school, 2)
    assert_field_error(history(school.carol, school.general.id, query, 400), param)


def test_history_is_404_to_those_who_may_not_see_the_channel(school):
    send(school.alice, school.staff, "staff only")
    send(school.alice, school.general, "hello all")
    answers = [
        history(school.dave, school.general.id, status=404),  # not in the workspace
        history(school.carol, school.staff.id, status=404),  # outsider to a private channel
        history(school.carol, 999999, status=404),  # no such channel
    ]
    assert answers[0] == answers[1] == answers[2]
    history(school.carol, 99999999999999999999, status=404)
    assert [m["content"] for m in history(school.alice, school.staff.id)["results"]] == ["staff only"]


def test_history_message_objects_carry_read_by_and_mentions(school):
    message = send(school.bob, school.general, "hi @carol")
    services.read_mark(user=school.carol, channel_id=school.general.id, message_id=message["id"])
    (listed,) = history(school.alice, school.general.id)["results"]
    assert listed["mentions"] == [school.carol.id]
    assert listed["readBy"] == [school.carol.id]
    assert {k: v for k, v in listed.items() if k != "readBy"} == {k: v for k, v in message.items() if k != "readBy"}


# --- pins ------------------------------------------------------------------------------


def test_pins_lists_pinned_messages_only(school):
    first = send(school.carol, school.general, "pin me")
    send(school.carol, school.general, "not me")
    assert get(school.carol, f"/api/channels/{school.general.id}/pins/") == []
    services.message_pin(user=school.bob, channel_id=school.general.id, message_id=first["id"])
    pins = get(school.carol, f"/api/channels/{school.general.id}/pins/")
    assert ids(pins) == [first["id"]]
    check_message(pins[0])
    assert pins[0]["isPinned"] is True and pins[0]["content"] == "pin me"
    get(school.dave, f"/api/channels/{school.general.id}/pins/", 404)
    get(school.carol, f"/api/channels/{school.staff.id}/pins/", 404)


# --- grade -------------------------------------------------------------------------------


def grade_url(channel_id: int, message_id: int) -> str:
    return f"/api/channels/{channel_id}/messages/{message_id}/grade/"


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_staff_grade_a_message_and_only_the_author_and_staff_see_it(school, who, make_user):
    from workspace_chat import services

    erin = make_user("erin")
    services.workspace_member_add(actor=school.alice, workspace_id=school.workspace.id, username="erin", role="student")
    essay = send(school.carol, school.general, "my essay")
    grader = getattr(school, who)
    body = post(grader, grade_url(school.general.id, essay["id"]), {"grade": "A-", "feedback": "Good"}, 200)
    check_message(body)
    assert (body["id"], body["content"]) == (essay["id"], "my essay")
    grade = body["grade"]
    assert (grade["value"], grade["feedback"], grade["gradedBy"]) == ("A-", "Good", grader.id) and grade["gradedAt"].endswith("Z")
    for viewer in (school.carol, school.alice, school.bob):
        assert history(viewer, school.general.id)["results"][0]["grade"] == grade
    assert history(erin, school.general.id)["results"][0]["grade"] is None, "a classmate never sees it"
    assert get(erin, f"/api/channels/{school.general.id}/messages/{essay['id']}/thread/", 200)["root"]["grade"] is None
    regraded = post(school.bob, grade_url(school.general.id, essay["id"]), {"grade": "B"}, 200)
    assert regraded["grade"]["value"] == "B" and regraded["grade"]["feedback"] is None


def test_grade_refusals(school):
    essay = send(school.carol, school.general, "my essay")
    post(school.carol, grade_url(school.general.id, essay["id"]), {"grade": "A+"}, 403)
    post(school.dave, grade_url(school.general.id, essay["id"]), {"grade": "A+"}, 404)
    post(school.bob, grade_url(school.general.id, 999999), {"grade": "A"}, 404)
    post(school.bob, grade_url(school.news.id, essay["id"]), {"grade": "A"}, 404)  # not in that channel
    assert_field_error(post(school.bob, grade_url(school.general.id, essay["id"]), {"feedback": "?"}, 400), "grade")
    assert history(school.carol, school.general.id)["results"][0]["grade"] is None


# --- operations ----------------------------------------------------------------------------


def test_schema_is_served_to_anonymous_callers(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "openapi" in text and "/api/workspaces/" in text and "/api/auth/login/" in text


@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
def test_healthz_reports_each_check(client, path):
    response = client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "checks"}, body
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "channelLayer": "ok", "messageStore": "sql"}
