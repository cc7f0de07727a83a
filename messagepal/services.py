"""Writes of MessagePal: send (persist, then `message_received` to every
connection of both people), mark read, typing, and the sender's edit and
delete (PROTOCOL.md part 2, "Message lifecycle"), the moderators' hide and
delete, and blocks.

Who can reach whom is `selectors.reachable_users` (people who share a
workspace, unless CHAT_MESSAGEPAL_SCOPE=anyone). A block works both ways:
while A blocks B, B's sends to A and A's sends to B are refused (`forbidden`
/ 403; unblock to write again), as are edits of earlier messages between
them, and typing is dropped both ways; both still read their history, mark
messages read and delete their own messages."""

from __future__ import annotations

from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditAction, User
from files.services import file_for_message, file_used, message_gone
from messagepal import protocol, schema
from messagepal.models import Block, Conversation, ReadMark
from messagepal.selectors import Recipient, access_conversation, access_message, access_recipient, blocks_between, message_objects
from messagestore import NewMessage, StoredMessage, get_store
from messagestore.services import message_append
from realtime import ratelimit
from realtime.events import abroadcast, broadcast_on_commit, pal_user_group
from wire.errors import Forbidden, Invalid, NotFound, RateLimited


def _tell_both(conversation_id: str, event: schema.PalBroadcast, *, skip_channel: str | None = None) -> None:
    """`event` to every connection of both people once the transaction
    commits (the acting connection, `skip_channel`, answers it directly)."""
    pair = protocol.parse_conversation_id(conversation_id)
    for user_id in pair or ():
        broadcast_on_commit(pal_user_group(user_id), event, skip_channel=skip_channel)


def _events_take(user: User) -> None:
    """The user's events bucket (mark_read, typing, edits, deletes)."""
    decision = ratelimit.take_event_sync(user.id)
    if not decision.allowed:
        raise RateLimited("Too many events; slow down.", decision.retry_after)


def _refuse_if_blocked(recipient: Recipient) -> None:
    if recipient.blocked_by_me:
        raise Forbidden("You blocked this person; unblock them to send messages.")
    if recipient.blocked_me:
        raise Forbidden("This person is not accepting your messages.")


def conversation_get_or_create(*, sender: User, recipient_id: int) -> Conversation:
    """The conversation of two people who can reach each other."""
    return _conversation(sender.id, access_recipient(sender, recipient_id).id)


def _conversation(user_id: int, other_id: int) -> Conversation:
    low, high = sorted((user_id, other_id))
    conversation, _ = Conversation.objects.get_or_create(
        id=protocol.conversation_id(low, high), defaults={"user_low_id": low, "user_high_id": high}
    )
    return conversation


def pal_message_send(
    *, sender: User, recipient_id: int, content: str, client_id: str | None = None, file_url: str | None = None, skip_channel: str | None = None
) -> tuple[schema.PalMessageObject, bool]:
    """Persist; `message_received` to both people's connections after commit
    (the sending connection gets it as its direct answer instead). Only to
    someone the sender can reach, with no block between them."""
    target = access_recipient(sender, recipient_id)
    _refuse_if_blocked(target)
    conversation = _conversation(sender.id, target.id)
    recipient = conversation.other(sender.id)
    # A file of this site's must have been uploaded for this conversation.
    attached = file_for_message(url=file_url, conversation_id=conversation.id)
    created: list[schema.PalMessageObject] = []

    def on_created(stored: StoredMessage) -> None:
        Conversation.objects.filter(id=conversation.id).update(last_message_id=stored.id, last_message_at=stored.created_at)
        created.append(schema.message_object(stored, sender_username=sender.username, recipient_id=recipient, read_at=None, file=attached))
        if attached is not None:
            file_used(file=attached, stream=stored.stream, message_id=stored.id)
        _tell_both(conversation.id, schema.message_received_event(created[0]), skip_channel=skip_channel)

    new = NewMessage(stream=conversation.id, author_id=sender.id, content=content, client_id=client_id, file_url=file_url)
    sent = message_append(new=new, on_created=on_created)
    if not sent.created:  # a replay: the stored message, as history shows it
        return message_objects([sent.message])[0], False
    return created[0], True


def pal_message_send_to_conversation(
    *, sender: User, conversation_id: str, content: str, client_id: str | None = None, file_url: str | None = None
) -> tuple[schema.PalMessageObject, bool]:
    low, high = access_conversation(sender, conversation_id)
    return pal_message_send(sender=sender, recipient_id=high if sender.id == low else low, content=content, client_id=client_id, file_url=file_url)


def pal_read_mark(*, user: User, conversation_id: str, message_number: int, skip_channel: str | None = None) -> schema.PalMessageReadEvent:
    """The caller marks that message and every earlier one read; `message_read`
    to both people if the pointer moved."""
    _events_take(user)
    access_conversation(user, conversation_id)
    store = get_store()
    if store.get(conversation_id, message_number) is None:
        raise NotFound("Message not found.")
    with transaction.atomic():
        moved = store.set_read_pointer(conversation_id, user.id, message_number)
        pointer = store.read_pointers(conversation_id).get(user.id)
        read_at = pointer.read_at if pointer else timezone.now()
        pointer_number = pointer.message_id if pointer else message_number
        event = schema.message_read_event(conversation_id, protocol.message_id(conversation_id, pointer_number), user.id, read_at)
        if moved:
            ReadMark.objects.create(conversation_id=conversation_id, reader_id=user.id, message_id=pointer_number, read_at=read_at)
            _tell_both(conversation_id, event, skip_channel=skip_channel)
    return event


async def pal_typing(*, user: User, recipient_id: int) -> None:
    """`user_typing` to the recipient's connections, at most once per
    CHAT_TYPING_EVERY seconds and conversation; each one that would leave
    checks reach and blocks first (a query every CHAT_TYPING_EVERY seconds
    at most): refused for someone out of reach, dropped while either blocks
    the other."""
    decision = await ratelimit.take_event(user.id)
    if not decision.allowed:
        raise RateLimited("Too many events; slow down.", decision.retry_after)
    conversation = protocol.conversation_id(user.id, recipient_id)
    if not await ratelimit.once_per(f"typing:{conversation}:{user.id}", settings.CHAT_TYPING_EVERY):
        return
    recipient = await database_sync_to_async(access_recipient)(user, recipient_id)
    if recipient.blocked:
        return
    await abroadcast(pal_user_group(recipient_id), schema.typing_event(conversation, user.id, user.username))


def pal_recipient_check(*, sender: User, recipient_id: int) -> None:
    """Raises unless `sender` can reach that person (blocks aside)."""
    access_recipient(sender, recipient_id)


def pal_message_edit(
    *, user: User, conversation_id: str, message_number: int, content: str, skip_channel: str | None = None
) -> schema.PalMessageUpdatedEvent:
    """The sender's new text (already read by the content rules of sending),
    within CHAT_EDIT_WINDOW seconds of sending; `message_updated` to both."""
    _events_take(user)
    message = access_message(user, conversation_id, message_number)
    if message.author_id != user.id:
        raise Forbidden("Only the sender can edit a message.")
    low, high = protocol.parse_conversation_id(conversation_id)  # type: ignore[misc]  # access_message parsed it
    _refuse_if_blocked(blocks_between(user, high if user.id == low else low))
    window = settings.CHAT_EDIT_WINDOW
    if window and timezone.now() - message.created_at > timedelta(seconds=window):
        raise Forbidden(f"Messages can be edited for {window} seconds after sending.")
    with transaction.atomic():
        edited = get_store().edit(conversation_id, message_number, content=content, mentions=())
        if edited is None:  # deleted meanwhile
            raise NotFound("Message not found.")
        event = schema.message_updated_event(message_objects([edited])[0])
        _tell_both(conversation_id, event, skip_channel=skip_channel)
    return event


def pal_message_delete(*, user: User, conversation_id: str, message_number: int, skip_channel: str | None = None) -> schema.PalMessageDeletedEvent:
    """The sender deletes a message (soft: moderators still see it);
    `message_deleted` to both."""
    _events_take(user)
    message = access_message(user, conversation_id, message_number)
    if message.author_id != user.id:
        raise Forbidden("Only the sender can delete a message.")
    with transaction.atomic():
        if get_store().soft_delete(conversation_id, message_number, by=user.id) is None:  # deleted meanwhile
            raise NotFound("Message not found.")
        message_gone(stream=conversation_id, message_id=message_number)
        event = _removed(conversation_id, message_number)
        _tell_both(conversation_id, event, skip_channel=skip_channel)
    return event


def pal_message_moderate(*, conversation_id: str, message_number: int, action: str, actor_id: int | None = None) -> bool:
    """Moderators hide or (soft) delete a MessagePal message (Django admin):
    `message_deleted` to both people either way; `unhide` shows a hidden one
    again (`message_updated`)."""
    store = get_store()
    with transaction.atomic():
        if action == "unhide":
            if not store.set_hidden(conversation_id, message_number, False):
                return False  # not there, or deleted (deleted stays deleted)
            audit_record(actor_id=actor_id, action=AuditAction.UNHIDE, target=f"message:{conversation_id}#{message_number}")
            shown = store.get(conversation_id, message_number)
            if shown is not None:
                _tell_both(conversation_id, schema.message_updated_event(message_objects([shown])[0]))
            return True
        if store.get(conversation_id, message_number) is None:
            return False
        if action == "hide":
            done = store.set_hidden(conversation_id, message_number, True)
        elif action == "delete":
            done = store.soft_delete(conversation_id, message_number, by=actor_id) is not None
            if done:
                message_gone(stream=conversation_id, message_id=message_number)
        else:
            raise ValueError(action)
        if done:
            audit_record(actor_id=actor_id, action=action, target=f"message:{conversation_id}#{message_number}")
            _tell_both(conversation_id, _removed(conversation_id, message_number))
    return done


def _removed(conversation_id: str, message_number: int) -> schema.PalMessageDeletedEvent:
    """A message left the conversation: the list orders conversations by
    their last visible message, so that moves back if it was the last."""
    page, _ = get_store().page(conversation_id, limit=1)
    last = page[0] if page else None
    Conversation.objects.filter(id=conversation_id).update(
        last_message_id=last.id if last else None, last_message_at=last.created_at if last else None
    )
    return schema.message_deleted_event(conversation_id, protocol.message_id(conversation_id, message_number))


# --- blocks ---------------------------------------------------------------------------


def block_create(*, blocker: User, user_id: int) -> tuple[User, bool]:
    """`blocker` blocks that person (any active user but themself, whether or
    not they share a workspace); (the blocked user, whether it is new)."""
    if user_id == blocker.id:
        raise Invalid("userId", "You cannot block yourself.")
    blocked = User.objects.filter(pk=user_id, is_active=True, is_ai=False).first()
    if blocked is None:
        raise Invalid("userId", "No such user.")
    _, created = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
    if created:
        audit_record(actor_id=blocker.id, action=AuditAction.BLOCK, target=f"user:{blocked.id}")
    return blocked, created


def block_delete(*, blocker: User, user_id: int) -> None:
    """Lift `blocker`'s block of that person; NotFound when there is none."""
    deleted, _ = Block.objects.filter(blocker=blocker, blocked_id=user_id).delete()
    if not deleted:
        raise NotFound("You have not blocked that person.")
    audit_record(actor_id=blocker.id, action=AuditAction.UNBLOCK, target=f"user:{user_id}")
