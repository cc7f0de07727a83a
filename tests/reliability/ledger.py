"""The client of the fault and churn tests and the checks against its ledger
(issue 8, "Faults" and "Churn").

A ChatClient tracks what the server acknowledged and what it received. The
invariant checked after every fault: each message the server acknowledged
(a direct `new_message` answer) is in the channel's history exactly once, at
the id it was acknowledged with, ids strictly increasing (ledger_check,
assert_ledger); each client received it live or through `afterId` catch-up,
and never twice (check_clients); a send that was not acknowledged, retried
with its clientId after recovery, is stored exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from typing import Any

import websockets

from tests.e2e.harness import WS, Person

# What a send may answer while a service is down (ChatClient.send).
ALLOWED_FAILURES = {"server_error", "closed", "timeout"}


def channel_history(person: Person, channel_id: int, page: int = 100, max_pages: int = 1000) -> list[dict[str, Any]]:
    """Every message of a channel, oldest first, through HTTP paging from after=0."""
    out: list[dict[str, Any]] = []
    after = 0
    for _ in range(max_pages):
        r = person.http.get(f"/api/channels/{channel_id}/messages/", params={"after": after, "limit": page})
        assert r.status_code == 200, (r.status_code, r.text[:300])
        body = r.json()
        out.extend(body["results"])
        if not body["hasMore"] or not body["results"]:
            return out
        after = body["results"][-1]["id"]
    raise AssertionError(f"history of channel {channel_id} longer than {max_pages} pages")


def ledger_check(history: list[dict[str, Any]], acked: dict[tuple[int, str], int]) -> dict[str, Any]:
    """The gap detector. `acked` maps (authorId, clientId) to the id the server
    acknowledged. Returns figures; the caller asserts on them."""
    ids = [m["id"] for m in history]
    by_key: dict[tuple[int, str], list[int]] = {}
    for m in history:
        if m.get("clientId"):
            by_key.setdefault((m["authorId"], m["clientId"]), []).append(m["id"])
    gaps = sorted(k for k in acked if k not in by_key)
    duplicates = sorted(k for k, v in by_key.items() if len(v) > 1)
    moved = sorted(k for k, v in acked.items() if k in by_key and by_key[k][0] != v)
    unordered = sum(1 for a, b in itertools.pairwise(ids) if b <= a)
    repeated_ids = len(ids) - len(set(ids))
    return {
        "messages": len(history),
        "acknowledged": len(acked),
        "gaps": len(gaps),
        "gap_examples": gaps[:5],
        "duplicates": len(duplicates),
        "duplicate_examples": duplicates[:5],
        "id_changed": len(moved),
        "not_increasing": unordered,
        "repeated_ids": repeated_ids,
    }


# ------------------------------------------------------------------ clients


class ChatClient:
    """One person in one channel who reconnects after faults, with a ledger:
    what the server acknowledged (direct `new_message` answers, by clientId),
    every message id received live or by catch-up, and the sends still to
    retry with their original clientId."""

    def __init__(self, person: Person, channel_id: int, name: str, *, resume_from: str = "newest"):
        # resume_from: "newest" rejoins with afterId = the newest id seen,
        # own acknowledged messages included (PROTOCOL.md's "last seen
        # message"); "stream" = the newest id of other people's messages
        # received live or by catch-up, own answers left out.
        assert resume_from in ("newest", "stream")
        self.resume_from = resume_from
        self.person = person
        self.channel_id = channel_id
        self.name = name
        self.ws: WS | None = None
        self.seq = 0
        self.acked: dict[str, dict[str, Any]] = {}  # clientId -> message
        self.pending: dict[str, str] = {}  # clientId -> content, not acknowledged yet
        self.received: list[int] = []  # ids of other people's messages, live or catch-up, in arrival order
        self.connects = 0
        self.sockets: list[WS] = []  # every connection it made, for the per-connection order check
        # Ids answered to a retried clientId: an acknowledgment of a message
        # stored earlier (PROTOCOL.md's safe retry), not a new delivery.
        self.replayed: set[int] = set()
        self.errors: dict[str, int] = {}
        # (kind, detail) in order: ("join", afterId), ("missed", ids),
        # ("recv", id), ("ack", id), ("drop", None): explains a gap.
        self.timeline: list[tuple[str, Any]] = []

    @property
    def last_seen(self) -> int:
        ids = list(self.received)
        if self.resume_from == "newest":
            ids += [m["id"] for m in self.acked.values()]
        return max(ids, default=0)

    def _note(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def connect(self, after_id: int | None = None) -> dict[str, Any]:
        """A new websocket, joined with afterId (default: the newest id seen);
        every catch-up page is recorded."""
        if self.ws is not None:
            await self.drop()
        self.ws = await self.person.connect()
        self.person.sockets.remove(self.ws)  # closed by drop(), not Person.close_all()
        self.sockets.append(self.ws)
        self.connects += 1
        # afterId must be >= 1 over the WebSocket (HTTP `after` accepts 0);
        # ids are time-ordered and far above 1, so 1 means "everything".
        after = max(1, self.last_seen if after_id is None else after_id)
        pages = 0
        while True:
            answer = await self.ws.request({"type": "join_channel", "channelId": self.channel_id, "afterId": after}, "joined_channel", timeout=15)
            assert answer["type"] == "joined_channel", answer
            missed = answer["missed"]
            assert all(m["id"] > after for m in missed), f"catch-up returned ids at or below afterId {after}"
            others = [m["id"] for m in missed if m["authorId"] != self.person.id]
            self.received.extend(others)
            self.timeline += [("join", after), ("missed", others)]
            # Own messages found in catch-up that were never acknowledged: the
            # server stored them; a retry with the same clientId must return them.
            pages += 1
            if not answer["hasMore"] or not missed or pages > 100:
                return answer
            after = missed[-1]["id"]

    async def drop(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            self.drain(ws)
            self.timeline.append(("drop", None))
            with contextlib.suppress(TimeoutError, OSError, websockets.WebSocketException):
                await asyncio.wait_for(ws.close(), 5)

    def drain(self, ws: WS | None = None) -> None:
        """Move live `new_message` broadcasts out of the backlog into the ledger."""
        ws = ws or self.ws
        if ws is None:
            return
        keep = []
        for e in ws.backlog:
            if e["type"] == "new_message" and "requestId" not in e and e["channelId"] == self.channel_id:
                self.received.append(e["message"]["id"])
                self.timeline.append(("recv", e["message"]["id"]))
            else:
                keep.append(e)
        ws.backlog[:] = keep

    async def pump(self, seconds: float) -> None:
        """Read live events for a while (no send)."""
        if self.ws is None:
            return
        try:
            await self.ws.expect("__never__", timeout=seconds)
        except (AssertionError, websockets.ConnectionClosed):
            pass
        self.drain()

    def order_violations(self) -> list[tuple[int, int, int]]:
        """Over every connection it made: a message given twice or out of id
        order (answers to retried sends left out: they acknowledge)."""
        return [bad for ws in self.sockets for bad in ws.order_violations(acknowledgments=self.replayed)]

    def new_client_id(self) -> tuple[str, str]:
        self.seq += 1
        client_id = f"{self.name}-{self.seq}"
        return client_id, f"{self.name} message {self.seq}"

    async def send(self, client_id: str, content: str, timeout: float = 10.0) -> str:
        """One attempt. Returns "ack", an error code, "timeout" or "closed".
        Anything but an ack leaves the message pending (to retry)."""
        retry = client_id in self.pending or client_id in self.acked  # sent before, maybe stored already
        if client_id not in self.acked:
            self.pending[client_id] = content
        if self.ws is None:
            return "closed"
        try:
            answer = await self.ws.request(
                {"type": "send_message", "channelId": self.channel_id, "content": content, "clientId": client_id},
                "new_message",
                timeout=timeout,
            )
        except websockets.ConnectionClosed:
            self._note("closed")
            return "closed"
        except (AssertionError, TimeoutError):
            self._note("timeout")
            return "timeout"
        finally:
            if self.ws is not None:
                self.drain()
        if answer["type"] == "new_message":
            message = answer["message"]
            assert message["clientId"] == client_id and message["authorId"] == self.person.id, message
            earlier = self.acked.get(client_id)
            assert earlier is None or earlier["id"] == message["id"], f"{client_id} acknowledged as {earlier['id']} then {message['id']}"
            self.acked[client_id] = message
            self.pending.pop(client_id, None)
            self.timeline.append(("ack", message["id"]))
            if retry:
                self.replayed.add(message["id"])
            return "ack"
        self._note(answer["code"])
        return answer["code"]

    async def retry_pending(self, timeout: float = 10.0) -> None:
        for client_id, content in list(self.pending.items()):
            outcome = await self.send(client_id, content, timeout=timeout)
            assert outcome == "ack", f"retry of {client_id} after recovery: {outcome}"

    def acked_keys(self) -> dict[tuple[int, str], int]:
        return {(self.person.id, cid): m["id"] for cid, m in self.acked.items()}


def explain_gap(client: ChatClient, message_id: int, around: int = 6) -> str:
    """The client's timeline around the moment a message went missing: the
    join whose afterId jumped over it, and what raised its newest seen id."""
    lines = []
    for i, (kind, detail) in enumerate(client.timeline):
        if kind == "join" and detail >= message_id:
            window = client.timeline[max(0, i - around): i + 2]
            lines.append(f"join afterId={detail} > {message_id}; before it: {window}")
            break
    return "; ".join(lines) or f"no join jumped over {message_id}"


# ------------------------------------------------------- checks on ledgers


def check_clients(clients: list[ChatClient], history: list[dict]) -> dict:
    """Per client: every acknowledged message of the others arrived live or by
    catch-up, none twice. Returns the figures; asserts."""
    acked_ids = {m["id"]: (c.name, cid) for c in clients for cid, m in c.acked.items()}
    missing: dict[str, list] = {}
    repeated: dict[str, list] = {}
    for c in clients:
        counts = Counter(c.received)
        repeated[c.name] = [i for i, n in counts.items() if n > 1]
        others = {i for i, (name, _) in acked_ids.items() if name != c.name}
        missing[c.name] = sorted(acked_ids[i] for i in others - set(counts))
    assert not any(repeated.values()), f"a client received a message twice: {repeated}"
    if any(missing.values()):
        by_key = {v: k for k, v in acked_ids.items()}
        why = [f"{c.name} misses {key} (id {by_key[key]}): {explain_gap(c, by_key[key])}" for c in clients for key in missing[c.name]]
        raise AssertionError("acknowledged messages a client never received (live or catch-up):\n" + "\n".join(why))
    return {"received": sum(len(c.received) for c in clients)}


def overtaken(client: ChatClient) -> int:
    """Broadcasts that reached the client after the direct answer to one of its
    own sends with a higher id, on the same connection."""
    count, newest_ack = 0, 0
    for kind, detail in client.timeline:
        if kind == "ack":
            newest_ack = max(newest_ack, detail)
        elif kind == "recv" and detail < newest_ack:
            count += 1
        elif kind == "drop":
            newest_ack = 0
    return count


def assert_ledger(clients: list[ChatClient], history: list[dict]) -> dict:
    acked = {}
    for c in clients:
        assert not c.pending, f"{c.name} still has unacknowledged sends: {list(c.pending)}"
        acked.update(c.acked_keys())
    result = ledger_check(history, acked)
    bad = {k: result[k] for k in ("gaps", "duplicates", "id_changed", "not_increasing", "repeated_ids") if result[k]}
    assert not bad, f"history does not match what was acknowledged: {result}"
    stray = [m for m in history if (m["authorId"], m.get("clientId")) not in acked]
    assert not stray, f"stored but never acknowledged, even after the retries: {stray[:3]}"
    return result


async def resume_and_read(clients: list[ChatClient], room: Any) -> tuple[list[dict], dict]:
    """The end of a fault test: every client reconnects with afterId and
    retries what is still unacknowledged, then sends one live message (which
    must be acknowledged: broadcast works again) and reads for a second; then
    the channel's whole history, checked against every client's ledger.
    Returns (history, the ledger's figures)."""
    for c in clients:
        await c.connect()
        await c.retry_pending()
    for c in clients:
        client_id, content = c.new_client_id()
        assert await c.send(client_id, content) == "ack"
    for c in clients:
        await c.pump(1.0)
    history = channel_history(room.teacher, room.general)
    for c in clients:
        await c.drop()
    return history, assert_ledger(clients, history)


async def more_acks(clients: list[ChatClient], more: int = 5, within: float = 30.0, poll: float = 0.2) -> bool:
    """After a fault: wait until every client has `more` acknowledgements
    beyond what it had when called (the load goes through again)."""
    deadline = time.monotonic() + within
    base = {c.name: len(c.acked) for c in clients}
    while time.monotonic() < deadline and not all(len(c.acked) > base[c.name] + more for c in clients):
        await asyncio.sleep(poll)
    return all(len(c.acked) > base[c.name] + more for c in clients)


async def stop_load(stop: asyncio.Event, tasks: list[asyncio.Task[Any]]) -> list[BaseException]:
    """The end of a load under a fault: stop its tasks and return what they raised."""
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]
