"""MessagePal over HTTP (PROTOCOL.md, "MessagePal HTTP")."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from messagepal import services
from tests.messagepal.pal import CONVERSATION_KEYS, PalListener, conv, make_pals, send
from tests.pal_schemas import check_pal_message
from tests.workspace_chat.test_api import assert_field_error, call

pytestmark = pytest.mark.django_db

LIST_URL = "/api/messagepal/conversations/"


@pytest.fixture
def pals(make_user, settings):
    return make_pals(make_user, settings)


def as_user(user) -> Client:
    # A server error must show as a 500 status, not as an exception in the test.
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def messages_url(conversation_id: str, query: str = "") -> str:
    return f"{LIST_URL}{quote(conversation_id, safe='')}/messages/{query}"


def listed(user) -> list[dict[str, Any]]:
    body = call(as_user(user), "get", LIST_URL, 200)
    for item in body:
        assert set(item) == CONVERSATION_KEYS
        assert set(item["otherUser"]) == {"id", "username", "displayName"}
        if item["lastMessage"] is not None:
            check_pal_message(item["lastMessage"])
    return body


def page(user, conversation_id: str, query: str = "", status: int = 200) -> Any:
    body = call(as_user(user), "get", messages_url(conversation_id, query), status)
    if status == 200:
        assert set(body) == {"results", "hasMore"} and isinstance(body["hasMore"], bool)
        for message in body["results"]:
            check_pal_message(message)
            assert message["conversationId"] == conversation_id
    return body


def post(user, conversation_id: str, body: Any, status: int) -> Any:
    return call(as_user(user), "post", messages_url(conversation_id), status, body)


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in messages]


def make_messages(pals, count: int) -> list[str]:
    return [send(*((pals.ann, pals.ben) if i % 2 else (pals.ben, pals.ann)), f"m{i}")["id"] for i in range(count)]


# --- GET conversations ---------------------------------------------------------------


def test_conversation_list_is_newest_first_and_exact(pals):
    send(pals.ann, pals.ben, "hi ben")
    with_cat = send(pals.cat, pals.ann, "hi ann")
    with_ben = send(pals.ben, pals.ann, "back")
    assert listed(pals.ann) == [
        {
            "conversationId": conv(pals.ann, pals.ben),
            "otherUser": {"id": pals.ben.id, "username": "ben", "displayName": "Ben B"},
            "lastMessage": with_ben,
            "unreadCount": 1,
        },
        {
            "conversationId": conv(pals.ann, pals.cat),
            "otherUser": {"id": pals.cat.id, "username": "cat", "displayName": "Cat C"},
            "lastMessage": with_cat,
            "unreadCount": 1,
        },
    ]
    assert [(c["otherUser"]["id"], c["unreadCount"]) for c in listed(pals.ben)] == [(pals.ann.id, 1)]


def test_conversation_list_unread_count_follows_the_read_pointer(pals):
    sent = [send(pals.ben, pals.ann, f"b{i}") for i in range(3)]
    assert [c["unreadCount"] for c in listed(pals.ann)] == [3]
    conversation_id = sent[0]["conversationId"]
    number = int(sent[1]["id"].rsplit(":", 1)[1])
    services.pal_read_mark(user=pals.ann, conversation_id=conversation_id, message_number=number)
    (item,) = listed(pals.ann)
    assert item["unreadCount"] == 1
    assert item["lastMessage"] == {**sent[2], "readAt": None}
    assert [m["readAt"] is not None for m in page(pals.ben, conversation_id)["results"]] == [True, True, False]
    assert listed(pals.cat) == []


# --- GET messages -------------------------------------------------------------------------


def test_messages_are_oldest_first_with_has_more_and_pages_cleanly(pals):
    sent = make_messages(pals, 120)
    conversation_id = conv(pals.ann, pals.ben)
    default = page(pals.ann, conversation_id)
    assert ids(default["results"]) == sent[-50:] and default["hasMore"] is True
    capped = page(pals.ben, conversation_id, "?limit=500")
    assert ids(capped["results"]) == sent[-100:] and capped["hasMore"] is True
    first = page(pals.ann, conversation_id, f"?before={quote(sent[100])}&limit=100")
    assert ids(first["results"]) == sent[:100] and first["hasMore"] is False
    collected: list[str] = []
    query = "?limit=30"
    while True:
        body = page(pals.ann, conversation_id, query)
        collected[:0] = ids(body["results"])
        if not body["hasMore"]:
            break
        query = f"?limit=30&before={quote(body['results'][0]['id'])}"
    assert collected == sent


def test_messages_of_an_empty_conversation(pals):
    assert page(pals.ann, conv(pals.ann, pals.ben)) == {"results": [], "hasMore": False}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?before=OTHER:5", "before"),  # a message id of another conversation
        ("?before=CONV:abc", "before"),
        ("?before=CONV:0", "before"),
        ("?before=5", "before"),
        ("?before=CONV", "before"),
        ("?limit=0", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=1.5", "limit"),
        ("?limit=true", "limit"),
        ("?limit=%C2%B2", "limit"),  # "²": str.isdigit() is true, int() refuses it
    ],
)
def test_bad_before_or_limit_is_400_with_the_field(pals, query, field):
    send(pals.ann, pals.ben, "hi")
    conversation_id = conv(pals.ann, pals.ben)
    query = query.replace("OTHER", conv(pals.ann, pals.cat)).replace("CONV", conversation_id)
    assert_field_error(page(pals.ann, conversation_id, query, 400), field)


# --- POST messages ------------------------------------------------------------------------


def test_post_answers_201_with_the_message_and_a_retry_200(pals):
    conversation_id = conv(pals.ann, pals.ben)
    created = post(pals.ann, conversation_id, {"content": "  hello ben  ", "clientId": "c-1"}, 201)
    check_pal_message(created)
    assert created["conversationId"] == conversation_id
    assert (created["senderId"], created["senderUsername"], created["recipientId"]) == (pals.ann.id, "ann", pals.ben.id)
    assert (created["content"], created["clientId"], created["readAt"]) == ("hello ben", "c-1", None)
    assert post(pals.ann, conversation_id, {"content": "hello ben", "clientId": "c-1"}, 200) == created
    reply = post(pals.ben, conversation_id, {"content": "hi ann"}, 201)
    assert reply["clientId"] is None and reply["senderId"] == pals.ben.id
    assert page(pals.ben, conversation_id)["results"] == [created, reply]
    assert listed(pals.ben)[0]["lastMessage"] == reply


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": ""}, "content"),
        ({"content": "   \n "}, "content"),
        ({"content": None}, "content"),
        ({"content": "x" * 4001}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "lone \ud800 surrogate"}, "non_field_errors"),  # refused by the JSON parser
        ({"content": "ok", "clientId": "c" * 129}, "clientId"),
        ({"content": "ok", "clientId": ""}, "clientId"),
        ("not json", "non_field_errors"),
        ('["content"]', "non_field_errors"),
    ],
)
def test_post_bad_body_is_400_and_stores_nothing(pals, body, field):
    conversation_id = conv(pals.ann, pals.ben)
    assert_field_error(post(pals.ann, conversation_id, body, 400), field)
    assert page(pals.ann, conversation_id)["results"] == []


def test_post_to_a_conversation_with_a_missing_user_is_404(pals):
    post(pals.ann, f"conv_{pals.ann.id}_{pals.cat.id + 1000}", {"content": "anyone?"}, 404)
    assert listed(pals.ann) == []


def test_post_is_rate_limited_with_retry_after(pals, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    conversation_id = conv(pals.ann, pals.ben)
    post(pals.ann, conversation_id, {"content": "one"}, 201)
    response = as_user(pals.ann).post(messages_url(conversation_id), {"content": "two"}, content_type="application/json")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert len(page(pals.ann, conversation_id)["results"]) == 1


# --- access -------------------------------------------------------------------------------


def test_non_participants_and_malformed_ids_get_the_same_404(pals):
    send(pals.ann, pals.ben, "private")
    a, b = pals.ann.id, pals.ben.id
    for user, conversation_id in [
        (pals.cat, conv(pals.ann, pals.ben)),  # exists, not cat's
        (pals.cat, f"conv_{a}_{pals.cat.id + 1000}"),  # does not exist
        (pals.ann, f"conv_{b}_{a}"),
        (pals.ann, f"conv_{a}_{a}"),
        (pals.ann, f"conv_0_{a}"),
        (pals.ann, f"conv_0{a}_{b}"),
        (pals.ann, "nonsense"),
    ]:
        assert page(user, conversation_id, status=404) == page(pals.cat, conv(pals.ann, pals.ben), status=404)
        post(user, conversation_id, {"content": "let me in"}, 404)
    assert [m["content"] for m in page(pals.ann, conv(pals.ann, pals.ben))["results"]] == ["private"]


def test_a_trailing_newline_does_not_make_another_conversation(pals):
    send(pals.ann, pals.ben, "private")
    malformed = conv(pals.ann, pals.ben) + "\n"
    page(pals.ann, malformed, status=404)
    post(pals.ann, malformed, {"content": "through a side door"}, 404)


def test_anonymous_gets_403(pals):
    anonymous = Client()
    conversation_id = conv(pals.ann, pals.ben)
    call(anonymous, "get", LIST_URL, 403)
    call(anonymous, "get", messages_url(conversation_id), 403)
    call(anonymous, "post", messages_url(conversation_id), 403, {"content": "hi"})


def test_csrf_is_enforced_on_a_logged_in_post(pals):
    client = Client(enforce_csrf_checks=True)
    client.force_login(pals.ann)
    url = messages_url(conv(pals.ann, pals.ben))
    assert client.post(url, {"content": "no token"}, content_type="application/json").status_code == 403
    assert page(pals.ann, conv(pals.ann, pals.ben))["results"] == []
    token = client.get("/api/auth/csrf/").cookies["csrftoken"].value
    response = client.post(url, {"content": "with token"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201 and response.json()["content"] == "with token"


# --- delivery -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_http_send_arrives_on_the_websocket_groups_of_both(pals):
    bens, anns, cats = PalListener(pals.ben), PalListener(pals.ann), PalListener(pals.cat)
    message = post(pals.ann, conv(pals.ann, pals.ben), {"content": "over http"}, 201)
    assert bens.next() == {"type": "message_received", "message": message}
    assert anns.next() == {"type": "message_received", "message": message}  # the sender's open tabs
    assert cats.silent() and bens.silent()


# --- who can reach whom, blocks (PROTOCOL.md part 2) -------------------------------------

BLOCKS_URL = "/api/messagepal/blocks/"


def blocks(user) -> list[dict[str, Any]]:
    return call(as_user(user), "get", BLOCKS_URL, 200)


def unblock(user, user_id: Any, status: int) -> None:
    response = as_user(user).delete(f"{BLOCKS_URL}{user_id}/")
    assert response.status_code == status, (response.status_code, response.content[:300])
    if status == 204:
        assert not response.content


def test_conversation_endpoints_answer_404_with_someone_out_of_reach(pals, make_user, settings):
    dan = make_user("dan")
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    earlier = send(dan, pals.ann, "from before")
    settings.CHAT_MESSAGEPAL_SCOPE = "workspace"
    conversation_id = earlier["conversationId"]
    for user in (pals.ann, dan):
        assert page(user, conversation_id, status=404) == page(pals.cat, conversation_id, status=404)
        post(user, conversation_id, {"content": "hello?"}, 404)
        assert listed(user) == []
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    assert page(pals.ann, conversation_id)["results"] == [earlier]


def test_block_unblock_and_the_list(pals, make_user):
    dan = make_user("dan", display_name="Dan D")
    assert blocks(pals.ann) == []
    assert call(as_user(pals.ann), "post", BLOCKS_URL, 201, {"userId": pals.ben.id}) == {"id": pals.ben.id, "username": "ben", "displayName": "Ben B"}
    assert call(as_user(pals.ann), "post", BLOCKS_URL, 200, {"userId": pals.ben.id})["id"] == pals.ben.id  # already blocked
    call(as_user(pals.ann), "post", BLOCKS_URL, 201, {"userId": dan.id})
    assert [u["id"] for u in blocks(pals.ann)] == [dan.id, pals.ben.id]
    assert blocks(pals.ben) == [] and blocks(dan) == []
    unblock(pals.ben, pals.ann.id, 404)  # ben blocked nobody
    unblock(pals.ann, pals.ben.id, 204)
    unblock(pals.ann, pals.ben.id, 404)
    assert [u["id"] for u in blocks(pals.ann)] == [dan.id]


def test_http_sends_are_403_both_ways_while_blocked(pals):
    conversation_id = conv(pals.ann, pals.ben)
    before = post(pals.ben, conversation_id, {"content": "before"}, 201)
    call(as_user(pals.ann), "post", BLOCKS_URL, 201, {"userId": pals.ben.id})
    for sender in (pals.ben, pals.ann):
        body = post(sender, conversation_id, {"content": "can you hear me?"}, 403)
        assert "detail" in body and "can you hear me" not in body["detail"]
    assert page(pals.ann, conversation_id)["results"] == page(pals.ben, conversation_id)["results"] == [before]
    post(pals.cat, conv(pals.ann, pals.cat), {"content": "cat is not blocked"}, 201)
    unblock(pals.ann, pals.ben.id, 204)
    post(pals.ben, conversation_id, {"content": "after"}, 201)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "userId"),
        ({"userId": None}, "userId"),
        ({"userId": "abc"}, "userId"),
        ({"userId": 1.5}, "userId"),
        ({"userId": True}, "userId"),
        ({"userId": 0}, "userId"),
        ({"userId": -3}, "userId"),
        ({"userId": 2**53}, "userId"),
        ({"userId": 10**30}, "userId"),
        ({"userId": [1]}, "userId"),
        ({"userId": "SELF"}, "userId"),
        ({"userId": "MISSING"}, "userId"),
        ({"userId": "INACTIVE"}, "userId"),
        ("not json", "non_field_errors"),
        ('["userId"]', "non_field_errors"),
    ],
)
def test_bad_block_is_400_with_the_field_and_changes_nothing(pals, body, field):
    if isinstance(body, dict) and isinstance(body.get("userId"), str) and body["userId"].isupper():
        if body["userId"] == "INACTIVE":
            pals.cat.is_active = False
            pals.cat.save(update_fields=["is_active"])
        body = {"userId": {"SELF": pals.ann.id, "MISSING": pals.cat.id + 1000, "INACTIVE": pals.cat.id}[body["userId"]]}
    assert_field_error(call(as_user(pals.ann), "post", BLOCKS_URL, 400, body), field)
    assert blocks(pals.ann) == []


@pytest.mark.parametrize("user_id", ["abc", "0x1", "1234567890123456", "-1", "%00"])
def test_unblock_of_a_malformed_id_is_404(pals, user_id):
    unblock(pals.ann, user_id, 404)


def test_blocks_need_a_login_and_the_csrf_token(pals):
    anonymous = Client()
    call(anonymous, "get", BLOCKS_URL, 403)
    call(anonymous, "post", BLOCKS_URL, 403, {"userId": pals.ben.id})
    assert anonymous.delete(f"{BLOCKS_URL}{pals.ben.id}/").status_code == 403
    client = Client(enforce_csrf_checks=True)
    client.force_login(pals.ann)
    assert client.post(BLOCKS_URL, {"userId": pals.ben.id}, content_type="application/json").status_code == 403
    assert blocks(pals.ann) == []
    call(as_user(pals.ann), "post", BLOCKS_URL, 201, {"userId": pals.ben.id})
    assert client.delete(f"{BLOCKS_URL}{pals.ben.id}/").status_code == 403
    assert [u["id"] for u in blocks(pals.ann)] == [pals.ben.id]


def test_conversation_list_leaves_out_conversations_out_of_reach_in_a_fixed_number_of_queries(pals, make_user, settings, django_assert_max_num_queries):
    from tests.messagepal.pal import classmates

    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    for i in range(3):
        send(make_user(f"stranger{i}"), pals.ann, f"from outside {i}")
    settings.CHAT_MESSAGEPAL_SCOPE = "workspace"
    friends = [make_user(f"friend{i}") for i in range(12)]
    classmates(pals.ann, *friends)
    for i, friend in enumerate(friends):
        send(friend, pals.ann, f"hi {i}")
    client = as_user(pals.ann)
    with django_assert_max_num_queries(10):
        response = client.get(LIST_URL)
    assert response.status_code == 200
    assert [c["lastMessage"]["content"] for c in response.json()] == [f"hi {i}" for i in reversed(range(12))]
