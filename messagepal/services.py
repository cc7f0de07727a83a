"""Writes of MessagePal: send (persist, then `message_received` to every
connection of both people), mark read, typing."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from messagepal import protocol, schema
from messagepal.models import Conversation, ReadMark
from messagepal.selectors import access_conversation, message_objects
from messagestore import NewMessage, StoredMessage, get_store
from messagestore.services import message_append
from realtime import ratelimit
from realtime.events import abroadcast, broadcast_on_commit, pal_user_group
from wire.errors import Invalid, NotFound, RateLimited


def _recipient(sender: User, recipient_id: int) -> User:
    if recipient_id == sender.id:
        raise Invalid("recipientId", "You cannot message yourself.")
    recipient = User.objects.filter(id=recipient_id, is_active=True, is_ai=False).first()
    if recipient is None:
        raise NotFound("No such user.")
    return recipient


def conversation_get_or_create(*, sender: User, recipient_id: int) -> Conversation:
    recipient = _recipient(sender, recipient_id)
    low, high = sorted((sender.id, recipient.id))
    conversation, _ = Conversation.objects.get_or_create(
        id=protocol.conversation_id(low, high), defaults={"user_low_id": low, "user_high_id": high}
    )
    return conversation


def pal_message_send(
    *, sender: User, recipient_id: int, content: str, client_id: str | None = None, skip_channel: str | None = None
) -> tuple[schema.PalMessageObject, bool]:
    """Persist; `message_received` to both people's connections after commit
    (the sending connection gets it as its direct answer instead)."""
    conversation = conversation_get_or_create(sender=sender, recipient_id=recipient_id)
    recipient = conversation.other(sender.id)
    created: list[schema.PalMessageObject] = []

    def on_created(stored: StoredMessage) -> None:
        Conversation.objects.filter(id=conversation.id).update(last_message_id=stored.id, last_message_at=stored.created_at)
        created.append(schema.message_object(stored, sender_username=sender.username, recipient_id=recipient, read_at=None))
        event = schema.message_received_event(created[0])
        for user_id in (conversation.user_low_id, conversation.user_high_id):
            broadcast_on_commit(pal_user_group(user_id), event, skip_channel=skip_channel)

    sent = message_append(new=NewMessage(stream=conversation.id, author_id=sender.id, content=content, client_id=client_id), on_created=on_created)
    if not sent.created:  # a replay: the stored message, as history shows it
        return message_objects([sent.message])[0], False
    return created[0], True


def pal_message_send_to_conversation(*, sender: User, conversation_id: str, content: str, client_id: str | None = None) -> tuple[schema.PalMessageObject, bool]:
    low, high = access_conversation(sender, conversation_id)
    return pal_message_send(sender=sender, recipient_id=high if sender.id == low else low, content=content, client_id=client_id)


def pal_read_mark(*, user: User, conversation_id: str, message_number: int, skip_channel: str | None = None) -> schema.PalMessageReadEvent:
    """The caller marks that message and every earlier one read; `message_read`
    to both people if the pointer moved."""
    decision = ratelimit.take_event_sync(user.id)
    if not decision.allowed:
        raise RateLimited("Too many events; slow down.", decision.retry_after)
    low, high = access_conversation(user, conversation_id)
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
            for user_id in (low, high):
                broadcast_on_commit(pal_user_group(user_id), event, skip_channel=skip_channel)
    return event


async def pal_typing(*, user: User, recipient_id: int) -> None:
    """`user_typing` to the recipient's connections (the consumer checked the
    recipient), at most once per CHAT_TYPING_EVERY seconds and conversation."""
    decision = await ratelimit.take_event(user.id)
    if not decision.allowed:
        raise RateLimited("Too many events; slow down.", decision.retry_after)
    conversation = protocol.conversation_id(user.id, recipient_id)
    if not await ratelimit.once_per(f"typing:{conversation}:{user.id}", settings.CHAT_TYPING_EVERY):
        return
    await abroadcast(pal_user_group(recipient_id), schema.typing_event(conversation, user.id, user.username))


def pal_recipient_check(*, sender: User, recipient_id: int) -> None:
    _recipient(sender, recipient_id)


def pal_message_moderate(*, conversation_id: str, message_number: int, action: str) -> bool:
    """Moderators hide or delete a MessagePal message (Django admin)."""
    store = get_store()
    done = store.set_hidden(conversation_id, message_number, True) if action == "hide" else store.delete(conversation_id, message_number)
    if done:
        # The list orders conversations by their last visible message.
        page, _ = store.page(conversation_id, limit=1)
        last = page[0] if page else None
        Conversation.objects.filter(id=conversation_id).update(
            last_message_id=last.id if last else None, last_message_at=last.created_at if last else None
        )
    return done
