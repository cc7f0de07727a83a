"""Writes of MessagePal: send (persist, then `message_received` to every
connection of both people), mark read, typing."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from chatcore import ratelimit
from chatcore.errors import Invalid, NotFound, RateLimited, StoreUnavailable
from chatcore.events import abroadcast, broadcast_on_commit, pal_user_group
from chatcore.store import NewMessage, StoreError, get_store
from messagepal import protocol
from messagepal.models import Conversation, ReadMark
from messagepal.selectors import access_conversation, message_objects


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


def pal_message_send(*, sender: User, recipient_id: int, content: str, client_id: str | None = None, skip_channel: str | None = None) -> tuple[dict[str, Any], bool]:
    """Persist; `message_received` to both people's connections after commit
    (the sending connection gets it as its direct answer instead)."""
    conversation = conversation_get_or_create(sender=sender, recipient_id=recipient_id)
    store = get_store()
    try:
        if client_id:
            existing = store.find_by_client_id(conversation.id, sender.id, client_id)
            if existing is not None:
                return message_objects([existing])[0], False
        decision = ratelimit.take(f"user:{sender.id}")
        if not decision.allowed:
            raise RateLimited("Too many messages; slow down.", decision.retry_after)
        with transaction.atomic():
            stored, created = store.append(
                NewMessage(stream=conversation.id, author_id=sender.id, content=content, client_id=client_id)
            )
            Conversation.objects.filter(id=conversation.id).update(last_message_id=stored.id, last_message_at=stored.created_at)
            payload = protocol.message_object(stored, sender_username=sender.username, recipient_id=conversation.other(sender.id), read_at=None)
            if created:
                event = protocol.message_received_event(payload)
                for user_id in (conversation.user_low_id, conversation.user_high_id):
                    broadcast_on_commit(pal_user_group(user_id), event, skip_channel=skip_channel)
    except StoreError as exc:
        raise StoreUnavailable("The message could not be stored; it was not sent.") from exc
    return payload, created


def pal_message_send_to_conversation(*, sender: User, conversation_id: str, content: str, client_id: str | None = None) -> tuple[dict[str, Any], bool]:
    low, high = access_conversation(sender, conversation_id)
    return pal_message_send(sender=sender, recipient_id=high if sender.id == low else low, content=content, client_id=client_id)


def pal_read_mark(*, user: User, conversation_id: str, message_number: int, skip_channel: str | None = None) -> dict[str, Any]:
    """The caller marks that message and every earlier one read; `message_read`
    to both people if the pointer moved."""
    low, high = access_conversation(user, conversation_id)
    store = get_store()
    if store.get(conversation_id, message_number) is None:
        raise NotFound("Message not found.")
    with transaction.atomic():
        moved = store.set_read_pointer(conversation_id, user.id, message_number)
        pointer = store.read_pointers(conversation_id).get(user.id)
        read_at = pointer.read_at if pointer else timezone.now()
        pointer_number = pointer.message_id if pointer else message_number
        event = protocol.message_read_event(conversation_id, protocol.message_id(conversation_id, pointer_number), user.id, read_at)
        if moved:
            ReadMark.objects.create(conversation_id=conversation_id, reader_id=user.id, message_id=pointer_number, read_at=read_at)
            for user_id in (low, high):
                broadcast_on_commit(pal_user_group(user_id), event, skip_channel=skip_channel)
    return event


async def pal_typing(*, user: User, recipient_id: int) -> None:
    """`user_typing` to the recipient's connections; the consumer checked the recipient."""
    conversation = protocol.conversation_id(user.id, recipient_id)
    await abroadcast(pal_user_group(recipient_id), protocol.typing_event(conversation, user.id, user.username))


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
