"""The fuzz test's judge and driver (tests/reliability/test_fuzz_ws.py): the
two protocols, what a frame must get back, the ledger of violations, one
session's exchange loop, and the Hypothesis run."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.e2e.conftest import e2e_env, server  # noqa: F401  (fixtures: a real daphne process)
from tests.pal_schemas import check_pal_event
from tests.reliability.fuzz_frames import World, frame_strategy
from tests.reliability.fuzz_values import CHAT_TYPES, DERANDOMIZE, MAX_CONTENT, MAX_FRAME_BYTES, MAX_REQUEST_ID, PAL_TYPES, PHASES, RECV_TIMEOUT, ROOT, Frame
from tests.reliability.record import record
from tests.schemas import check_chat_event


@dataclass(frozen=True)
class Proto:
    name: str
    path: str
    check: Callable[[dict[str, Any]], None]
    types: frozenset[str]
    broadcast: frozenset[str]  # events that are never the direct answer to a frame
    ack: str  # the direct answer to a stored send


CHAT = Proto(
    "chat",
    "/ws/chat/",
    check_chat_event,
    CHAT_TYPES,
    frozenset({"user_presence", "user_typing", "user_stop_typing", "message_updated", "message_deleted", "thread_updated", "reaction_updated"}),
    "new_message",
)
PAL = Proto("messagepal", "/ws/messagepal/", check_pal_event, PAL_TYPES, frozenset({"user_typing", "message_updated", "message_deleted"}), "message_received")


class Closed(Exception):
    pass


class Hang(Exception):
    pass


def classify(proto: Proto, frame: Frame) -> tuple[bool, str | None]:
    """(whether the frame must be answered by exactly one bad_request, the
    requestId its answer must carry). JSON is decoded as RFC 8259 says
    (orjson, strict: no NaN, no lone surrogates, depth <= 1024)."""
    if frame.text is None:
        return True, None
    try:
        data = orjson.loads(frame.text)
    except orjson.JSONDecodeError:
        return True, None
    if not isinstance(data, dict):
        return True, None
    request_id = data.get("requestId")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID):
        return True, None
    if not isinstance(data.get("type"), str) or data["type"] not in proto.types:
        return True, request_id
    return False, request_id


class Violation(AssertionError):
    """A broken rule: `kind` groups the same bug seen on many frames."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def check(condition: bool, kind: str, detail: Any = "") -> None:
    if not condition:
        raise Violation(kind, str(detail))


def assert_plain_content(content: Any) -> None:
    check(isinstance(content, str) and bool(content), "empty content", repr(content))
    check(content == content.strip(), "content not trimmed", repr(content))
    check("\x00" not in content, "NUL in content", repr(content))
    check(len(content) <= MAX_CONTENT, "content over the limit", len(content))
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        raise Violation("lone surrogate in content", repr(content)) from None


@dataclass
class Ledger:
    """What the fuzz did and every rule it saw broken, grouped by kind so that
    one run names every distinct bug (each with its first frames)."""

    acked: dict[tuple[str, int], str] = field(default_factory=dict)
    failures: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    failure_count: int = 0
    frames: int = 0
    binary: int = 0
    rejected: int = 0
    answered: int = 0
    sends_stored: int = 0
    seconds: float = 0.0  # in exchanges with the server
    check_seconds: float = 0.0  # in log and store checks

    def record(self, protocol: str, kind: str, example: str) -> None:
        self.failure_count += 1
        examples = self.failures.setdefault((protocol, kind), [])
        if len(examples) < 3:
            examples.append(example)

    def summary(self) -> str:
        lines = [f"{self.failure_count} violations of {len(self.failures)} kinds:"]
        for (protocol, kind), examples in self.failures.items():
            lines.append(f"- [{protocol}] {kind}")
            lines.extend(f"    {e}" for e in examples)
        return "\n".join(lines)


def ack_key(proto: Proto, answer: dict[str, Any]) -> tuple[tuple[str, int], str, int]:
    message = answer["message"]
    if proto is CHAT:
        return (f"ch:{answer['channelId']}", message["id"]), message["content"], message["authorId"]
    return (message["conversationId"], int(message["id"].rsplit(":", 1)[1])), message["content"], message["senderId"]


def judge(proto: Proto, world: World, frame: Frame, events: list[dict[str, Any]], ledger: Ledger) -> None:
    """The per-frame rules; raises Violation."""
    for event in events:
        try:
            proto.check(event)
        except AssertionError as exc:
            raise Violation(f"event off schema ({exc})", str(event)) from None
        if event["type"] == "error" and event["code"] == "server_error":
            raise Violation(f"server_error {event['message']!r}", str(event))
    # A broadcast never carries a requestId; a direct answer of a type that is
    # also broadcast (message_updated to an edit) carries the frame's.
    direct = [
        e
        for e in events
        if (e["type"] not in proto.broadcast or "requestId" in e) and not (e["type"] == "new_message" and e["message"]["isAI"])
    ]
    check(len(direct) <= 1, "more than one answer to a frame", events)
    must_reject, request_id = classify(proto, frame)
    if must_reject:
        ledger.rejected += 1
        check(len(direct) == 1 and direct[0]["type"] == "error" and direct[0]["code"] == "bad_request", "no bad_request", events)
    if not direct:
        return
    ledger.answered += 1
    answer = direct[0]
    check(answer.get("requestId", None) == request_id, f"requestId not copied (expected {request_id!r})", answer)
    if answer["type"] == "message_updated" and "message" in answer:
        data = orjson.loads(frame.text)  # type: ignore[arg-type]
        check(data["type"] == "edit_message", "an update answer to a frame that is not an edit", answer)
        key, content, author = ack_key(proto, answer)
        check(author == world.me, "someone else's message edited", answer)
        check(content == data["content"].strip(), "edited text differs from the sent text", answer)
        assert_plain_content(content)
        if key in ledger.acked:
            ledger.acked[key] = content
    if answer["type"] == "message_deleted":
        data = orjson.loads(frame.text)  # type: ignore[arg-type]
        check(data["type"] == "delete_message", "a delete answer to a frame that is not a delete", answer)
        key = (f"ch:{answer['channelId']}", answer["messageId"]) if proto is CHAT else (answer["conversationId"], int(answer["messageId"].rsplit(":", 1)[1]))
        ledger.acked.pop(key, None)
    if answer["type"] == proto.ack:
        data = orjson.loads(frame.text)  # type: ignore[arg-type]
        check(data["type"] == "send_message", "a message answer to a frame that is not a send", answer)
        key, content, author = ack_key(proto, answer)
        check(author == world.me, "acknowledged as someone else's message", answer)
        if key not in ledger.acked:
            ledger.acked[key] = content
            ledger.sends_stored += 1
            # A new message: exactly the text sent, trimmed, not escaped.
            check(content == data["content"].strip(), "stored text differs from the sent text", answer)
        assert_plain_content(content)
        for name in ("clientId", "fileUrl"):
            # Every backend must be able to store it: PostgreSQL refuses NUL in text.
            value = answer["message"].get(name)
            check(value is None or "\x00" not in value, f"NUL accepted in {name}", answer)


class Session:
    """One fuzzed connection (and an observer connection of another member),
    reopened when a frame killed it."""

    def __init__(
        self,
        proto: Proto,
        world: World,
        opener: Callable[[], Awaitable[tuple[Any, Any]]],
        frame_errors: Callable[[], list[tuple[str, str]]] | None = None,
    ):
        self.proto = proto
        self.world = world
        self.opener = opener
        self.frame_errors = frame_errors  # ERROR records since the last call: (kind, detail)
        self.conn: Any = None
        self.observer: Any = None
        self.sync = itertools.count(1)

    @property
    def alive(self) -> bool:
        return self.conn is not None

    async def open(self) -> None:
        await self.close()
        self.conn, self.observer = await self.opener()

    async def close(self) -> None:
        # The observer first, and a pause: the fuzzed connection then gets
        # no broadcast while it is itself closing.
        for conn in (self.observer, self.conn):
            if conn is not None:
                try:
                    await conn.close()
                    await asyncio.sleep(0.2)
                except (Exception, asyncio.CancelledError):
                    pass  # a connection a frame already broke
        self.conn = self.observer = None

    async def batch(self, frames: list[Frame], ledger: Ledger) -> None:
        started = time.monotonic()
        name = self.proto.name
        try:
            for frame in frames:
                if frame.text is not None:
                    assert len(frame.text.encode("utf-8")) < MAX_FRAME_BYTES, f"generator made an over-size frame {frame!r}"
                try:
                    events = await self.exchange(frame, ledger)
                except (Closed, Hang) as exc:
                    ledger.record(name, str(exc), repr(frame))
                    await self.close()
                    return  # the next batch reopens
                try:
                    judge(self.proto, self.world, frame, events, ledger)
                except Violation as exc:
                    ledger.record(name, exc.kind, f"{frame!r} -> {exc.detail[:400]}")
                if self.frame_errors is not None:
                    for kind, detail in self.frame_errors():
                        ledger.record(name, kind, f"{frame!r} -> {detail}")
            # The connection is still usable after the batch.
            try:
                last = await self.exchange(Frame(text='{"type":"ping","requestId":"after-batch"}'), ledger, count=False)
            except (Closed, Hang) as exc:
                ledger.record(name, f"{exc} (after-batch ping)", repr(frames[-1]))
                await self.close()
                return
            if [e for e in last if e["type"] not in self.proto.broadcast] != [{"type": "pong", "requestId": "after-batch"}]:
                ledger.record(name, "after-batch ping not answered by one pong", str(last))
            for event in await self.observer.drain():
                try:
                    self.proto.check(event)
                    check(event["type"] != "error", "the observer got an error", event)
                    if event["type"] == self.proto.ack:
                        key, _, author = ack_key(self.proto, event)
                        check(author != self.world.me or key in ledger.acked, "the observer got a message never acknowledged", event)
                except AssertionError as exc:
                    kind = exc.kind if isinstance(exc, Violation) else str(exc)[:200]
                    ledger.record(name, f"observer: {kind}", str(event)[:400])
        except (Closed, Hang) as exc:  # the observer's connection
            ledger.record(name, f"observer: {exc}", "")
            await self.close()
        finally:
            ledger.seconds += time.monotonic() - started

    async def exchange(self, frame: Frame, ledger: Ledger, count: bool = True) -> list[dict[str, Any]]:
        sync = f"~sync-{next(self.sync)}~"
        await self.conn.send(frame)
        if count:
            ledger.frames += 1
            ledger.binary += frame.text is None
        await self.conn.send(Frame(text=json.dumps({"type": "ping", "requestId": sync})))
        events = []
        while True:
            try:
                event = await self.conn.recv(RECV_TIMEOUT)
            except Closed as exc:
                raise Closed(f"the server closed the connection ({exc})") from None
            except Hang:
                raise Hang(f"no answer within {RECV_TIMEOUT}s") from None
            if event.get("requestId") == sync:
                if event != {"type": "pong", "requestId": sync}:
                    raise Closed(f"the sentinel ping was answered {event}")
                return events
            events.append(event)


class LoopThread:
    """An event loop in a thread of its own: the connections live there for
    the whole test while Hypothesis drives examples from the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_rest(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def fuzz(
    runner: LoopThread,
    session: Session,
    ledger: Ledger,
    *,
    examples: int,
    batch: int,
    explicit: list[list[Frame]],
    batch_errors: Callable[[], list[tuple[str, str]]],
    check_store: Callable[[], None],
) -> None:
    strategy = frame_strategy(session.world, "chat" if session.proto is CHAT else "pal")

    def run(frames: list[Frame]) -> None:
        if not session.alive:
            runner.run(session.open())
        runner.run(session.batch(frames, ledger))
        started = time.monotonic()
        for kind, detail in batch_errors():
            ledger.record(session.proto.name, kind, f"during a batch starting {frames[0]!r}: {detail}")
        try:
            check_store()
        except AssertionError as exc:
            ledger.record(session.proto.name, f"store: {str(exc)[:120]}", str(exc)[:400])
        ledger.check_seconds += time.monotonic() - started

    for frames in reversed(explicit):  # the last one applied runs first
        run = example(frames=frames)(run)
    test = given(frames=st.lists(strategy, min_size=batch, max_size=batch))(run)
    test = hsettings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        phases=PHASES,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=True,
    )(test)
    test()



def record_final_checks(ledger, check_store, logged_errors) -> None:
    """After a run: the store's consistency and the errors the server logged."""
    try:
        check_store()
    except AssertionError as exc:
        ledger.record("both", f"store: {exc}"[:200], "")
    for kind, detail in logged_errors():
        ledger.record("both", kind, detail)

def report(label: str, ledger: Ledger) -> str:
    line = (
        f"{label}: {ledger.frames} frames fuzzed ({ledger.binary} binary, {ledger.rejected} must-reject, "
        f"{ledger.answered} answered, {ledger.sends_stored} valid sends stored); "
        f"exchanges {ledger.seconds:.1f}s, checks {ledger.check_seconds:.1f}s"
    )
    record(
        f"fuzz-ws-{label}",
        frames=ledger.frames,
        binary=ledger.binary,
        must_reject=ledger.rejected,
        answered=ledger.answered,
        valid_sends_stored=ledger.sends_stored,
        violations=ledger.failure_count,
    )
    return line


# --- in-process: channels.testing.WebsocketCommunicator -------------------------


class CommConn:
    def __init__(self, comm: Any):
        self.comm = comm

    async def send(self, frame: Frame) -> None:
        # send_input, not send_to: send_to refuses an empty frame; daphne passes it on.
        if frame.text is not None:
            await self.comm.send_input({"type": "websocket.receive", "text": frame.text})
        else:
            await self.comm.send_input({"type": "websocket.receive", "bytes": frame.data})

    async def recv(self, timeout: float) -> dict[str, Any]:
        try:
            out = await self.comm.receive_output(timeout)
        except TimeoutError:
            raise Hang() from None
        if out["type"] == "websocket.close":
            raise Closed(f"code {out.get('code')}")
        assert out["type"] == "websocket.send" and isinstance(out.get("text"), str), f"not a text frame: {out}"
        event = json.loads(out["text"])
        assert isinstance(event, dict), event
        return event

    async def drain(self) -> list[dict[str, Any]]:
        events = []
        while not await self.comm.receive_nothing(0.02):
            events.append(await self.recv(2))
        return events

    async def close(self) -> None:
        await self.comm.disconnect(timeout=10)


async def request(conn: Any, event: dict[str, Any], check: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    await conn.send(Frame(text=json.dumps({**event, "requestId": "setup"})))
    while True:
        answer = await conn.recv(RECV_TIMEOUT)
        check(answer)
        if answer.get("requestId") == "setup":
            return answer


def origin(exc: BaseException | None) -> str:
    """file:line of the innermost project frame of the root cause of an
    exception (walking __cause__/__context__)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for link in reversed(chain):
        frames = [f for f in traceback.extract_tb(link.__traceback__) if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename]
        if frames:
            return f"{os.path.relpath(frames[-1].filename, ROOT)}:{frames[-1].lineno}"
    return "?"

