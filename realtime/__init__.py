"""The WebSocket transport both chats share: the broadcast helper and group
names (events), the per-process fan-out (hub), each connection's delivery
decisions (delivery) and its I/O (consumers), Redis clients and rate limits.
No models, no message store."""
