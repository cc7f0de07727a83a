"""Stream keys: which messages of the one store belong together. A workspace
channel's stream is `ch:{channelId}`; a MessagePal conversation's stream is
its conversation id, `conv_{a}_{b}` (messagepal.protocol.conversation_id)."""

from __future__ import annotations

CHANNEL_PREFIX = "ch:"
CONVERSATION_PREFIX = "conv_"


def channel_stream(channel_id: int) -> str:
    return f"{CHANNEL_PREFIX}{int(channel_id)}"


def channel_of(stream: str) -> int:
    """The channel id of a channel stream."""
    if not stream.startswith(CHANNEL_PREFIX):
        raise ValueError(f"{stream!r} is not a channel stream")
    return int(stream[len(CHANNEL_PREFIX) :])
