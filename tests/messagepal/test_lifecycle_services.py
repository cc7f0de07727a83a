"""MessagePal edit and delete (PROTOCOL.md part 2, "Message lifecycle"), with
the events they broadcast."""

from __future__ import annotations

import pytest
from django.db import transaction

from messagestore import moderation
from tests.messagepal.pal import assert_nothing_broadcast_before, conversations, delete, deleted_by, edit, history, later, number, read, send
from tests.pal_schemas import check_pal_event
from wire.errors import Forbidden, NotFound, RateLimited

# Broadcasts leave on commit, so these tests run outside a wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)




# --- edit / delete (PROTOCOL.md part 2, "Message lifecycle") ------------------------------


def test_edit_sets_content_and_edited_at_and_tells_both(pals, listen):
    message = send(pals.ann, pals.ben, "helo", client_id="c-1")
    read(pals.ben, message)
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    with transaction.atomic():
        event = edit(pals.ann, message, "hello")
        assert anns.silent() and bens.silent(), "broadcast before the transaction committed"
    check_pal_event(event)
    updated = event["message"]
    assert event == {"type": "message_updated", "conversationId": message["conversationId"], "message": updated}
    assert updated["editedAt"] is not None and updated["editedAt"] >= message["createdAt"]
    # Everything but the text and editedAt stays, readAt included.
    assert {**updated, "content": "helo", "editedAt": None} == {**message, "readAt": updated["readAt"]}
    assert updated["readAt"] is not None and (updated["fileUrl"], updated["file"]) == (None, None)
    assert anns.next() == event and bens.next() == event
    assert cats.silent()
    assert history(pals.ben, message["conversationId"]) == [updated]
    (item,) = conversations(pals.ben)
    assert item["lastMessage"] == updated


def test_every_message_object_carries_edited_at_file_url_and_file(pals):
    message = send(pals.ann, pals.ben, "plain")
    assert (message["editedAt"], message["fileUrl"], message["file"]) == (None, None, None)
    (listed,) = conversations(pals.ann)
    assert listed["lastMessage"] == history(pals.ben, message["conversationId"])[0] == message


def test_edit_window(pals, monkeypatch, settings):
    settings.CHAT_EDIT_WINDOW = 3600
    message = send(pals.ann, pals.ben, "first")
    later(monkeypatch, 3500)
    assert edit(pals.ann, message, "within the hour")["message"]["content"] == "within the hour"
    later(monkeypatch, 3700)
    with pytest.raises(Forbidden):
        edit(pals.ann, message, "too late")
    assert history(pals.ann, message["conversationId"])[0]["content"] == "within the hour"
    settings.CHAT_EDIT_WINDOW = 0  # no limit
    later(monkeypatch, 10 * 365 * 86400)
    assert edit(pals.ann, message, "years later")["message"]["content"] == "years later"


def test_delete_is_not_limited_by_the_edit_window(pals, monkeypatch, settings):
    settings.CHAT_EDIT_WINDOW = 60
    message = send(pals.ann, pals.ben, "old")
    later(monkeypatch, 3600)
    delete(pals.ann, message)
    assert history(pals.ann, message["conversationId"]) == []


def test_only_the_sender_edits_or_deletes(pals, listen):
    message = send(pals.ann, pals.ben, "mine")
    anns = listen(pals.ann)
    with pytest.raises(Forbidden):
        edit(pals.ben, message, "yours now")
    with pytest.raises(Forbidden):
        delete(pals.ben, message)
    assert history(pals.ann, message["conversationId"]) == [message]
    assert_nothing_broadcast_before(anns, pals)


def test_missing_deleted_or_foreign_messages_are_not_found_before_any_permission_check(pals, listen):
    message = send(pals.ann, pals.ben, "private")
    gone = send(pals.ann, pals.ben, "gone")
    delete(pals.ann, gone)
    anns = listen(pals.ann)
    missing = {**message, "id": f"{message['conversationId']}:{number(gone) + 1}"}
    foreign = {**message, "conversationId": f"conv_{pals.ann.id}_{pals.cat.id + 1000}"}
    cases = [(pals.cat, message), (pals.ann, missing), (pals.ann, gone), (pals.ben, gone), (pals.ann, foreign), (pals.ben, missing)]
    for user, target in cases:
        with pytest.raises(NotFound) as refused_edit:
            edit(user, target, "x")
        with pytest.raises(NotFound) as refused_delete:
            delete(user, target)
        assert refused_edit.value.code == refused_delete.value.code == "not_found", (user.username, target)
    assert history(pals.ben, message["conversationId"]) == [message]
    assert_nothing_broadcast_before(anns, pals)


def test_delete_hides_the_message_everywhere_and_tells_both(pals, listen):
    kept = send(pals.ann, pals.ben, "kept")
    doomed = send(pals.ann, pals.ben, "oops")
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    with transaction.atomic():
        event = delete(pals.ann, doomed)
        assert anns.silent() and bens.silent(), "broadcast before the transaction committed"
    check_pal_event(event)
    assert event == {"type": "message_deleted", "conversationId": doomed["conversationId"], "messageId": doomed["id"]}
    assert anns.next() == event and bens.next() == event
    assert cats.silent()
    assert history(pals.ben, kept["conversationId"]) == [kept]
    (item,) = conversations(pals.ben)
    assert item["lastMessage"] == kept and item["unreadCount"] == 1
    with pytest.raises(NotFound):
        read(pals.ben, doomed)
    assert deleted_by(doomed) == pals.ann.id


def test_deleting_the_only_message_leaves_the_conversation_list(pals):
    only = send(pals.ann, pals.ben, "only")
    delete(pals.ann, only)
    assert conversations(pals.ann) == [] and conversations(pals.ben) == []
    again = send(pals.ben, pals.ann, "again")
    assert [c["lastMessage"] for c in conversations(pals.ann)] == [again]


def test_unread_count_skips_deleted_messages(pals):
    b1, b2 = send(pals.ben, pals.ann, "b1"), send(pals.ben, pals.ann, "b2")
    send(pals.ben, pals.ann, "b3")
    delete(pals.ben, b2)
    (item,) = conversations(pals.ann)
    assert item["unreadCount"] == 2
    read(pals.ann, b1)
    assert conversations(pals.ann)[0]["unreadCount"] == 1


def test_edit_and_delete_use_the_events_bucket(pals, settings):
    settings.CHAT_RATE_LIMIT_EVENTS = 2
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    message = send(pals.ann, pals.ben, "1")
    edit(pals.ann, message, "2")
    delete(pals.ann, message)
    with pytest.raises(RateLimited):
        edit(pals.ann, send(pals.ann, pals.ben, "still sends"), "3")
    with pytest.raises(RateLimited):
        read(pals.ann, message)  # the same bucket


@pytest.mark.parametrize("action", ["hide", "delete"])
def test_moderation_tells_both_people(pals, make_user, listen, action):
    moderator = make_user("mod")
    rude = send(pals.ann, pals.ben, "rude")
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    done = moderation.message_moderate(stream=rude["conversationId"], message_id=number(rude), action=action, actor_id=moderator.id)
    assert done is True
    event = {"type": "message_deleted", "conversationId": rude["conversationId"], "messageId": rude["id"]}
    assert anns.next() == event and bens.next() == event
    assert cats.silent()
    if action == "delete":
        assert deleted_by(rude) == moderator.id
    # Already gone: nothing more to do, nothing more said.
    assert moderation.message_moderate(stream=rude["conversationId"], message_id=number(rude), action="delete", actor_id=moderator.id) is False
    with pytest.raises(NotFound):
        edit(pals.ann, rude, "sorry")
    assert_nothing_broadcast_before(anns, pals)


