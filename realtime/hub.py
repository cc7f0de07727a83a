"""Per-process fan-out of broadcasts: one channel-layer subscription per
process and group, not one per WebSocket (Zulip's Tornado event queues,
Mattermost's hub, gorilla/websocket's PreparedMessage).

Services publish to channel-layer groups (realtime.events), so every process
-- and the channel layer, Redis or in-memory -- sees one message per event.
The hub of each process joins a group with its one layer channel the first
time a local connection joins it, and hands each event to its local
connections in that group as one `Broadcast` (decoded once, framed once).
What a connection does with it is the connection's business
(realtime.consumers, realtime.delivery).

When the channel layer fails, or Redis Sentinel fails over to a new primary
(realtime.redis.failovers), the hub closes its connections (1011) so
clients resume with `afterId` instead of silently missing broadcasts, and
re-adds its groups once the layer answers again. Its maintenance round also
runs the hooks other apps register (`on_maintenance`: presence refreshes its
entries there).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer

from realtime import redis as chat_redis
from realtime.events import EVENT_TYPE, Broadcast, channel_layer
from realtime.reorder import Sequencer
from wire.metrics import DELIVERIES

logger = logging.getLogger(__name__)

# A maintenance round this often; every REJOIN_EVERY_ROUNDS rounds the hub
# re-adds its groups to the layer (channels-redis forgets members after
# group_expiry, a day).
MAINTENANCE_EVERY = float(os.environ.get("CHAT_MAINTENANCE_EVERY", "20"))  # tests shorten it
REJOIN_EVERY_ROUNDS = 90
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0)
# The hub sends itself a probe through the layer this often; a probe not back
# within PROBE_TIMEOUT means broadcasts are not arriving (RedisPubSubChannelLayer
# never raises on receive: it reconnects and re-subscribes silently).
PROBE_EVERY = 1.0
PROBE_TIMEOUT = 10.0
PROBE_TYPE = "chat.hub_probe"
# At most this many group_add/group_discard calls to the layer at once.
LAYER_CALLS = 32
# Messages the hub takes off Redis in one call when they queue up (_waiting).
RECEIVE_BATCH = 64
# Seconds a new message that overtook its predecessor (sent through another
# process) waits for it before the connections fill the gap from the store
# themselves (realtime.reorder).
REORDER_WAIT = float(os.environ.get("CHAT_REORDER_WAIT", "0.1"))


class Listener(Protocol):
    """A connection, as the hub sees it."""

    def on_broadcast(self, event: Broadcast) -> None: ...

    def on_control(self, message: dict[str, Any]) -> None:
        """Any other layer message for its group (realtime.events.force_close)."""

    def on_layer_failed(self) -> None: ...


MaintenanceHook = Callable[["Hub"], Awaitable[None]]
_maintenance_hooks: list[MaintenanceHook] = []


def on_maintenance(hook: MaintenanceHook) -> None:
    """Run `hook` every MAINTENANCE_EVERY seconds in each process with a hub
    (registered once, from an AppConfig)."""
    if hook not in _maintenance_hooks:
        _maintenance_hooks.append(hook)


class Hub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.members: dict[str, set[Listener]] = {}
        # Every connection of this process, with the groups it is in.
        self.listeners: dict[Listener, set[str]] = {}
        self._layer_groups: set[str] = set()
        self._group_locks: dict[str, asyncio.Lock] = {}
        # Layer group calls at once: 1,000 sockets closing together leave
        # 3,000 groups; unbounded, they exhausted the layer's connection pool
        # and the probe failed with them (the join-storm bench).
        self._layer_calls = asyncio.Semaphore(LAYER_CALLS)
        self._names = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:12]
        self.channel: str | None = None
        self._start_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._pending: set[asyncio.Future] = set()
        self._failing = False
        # Set while the layer delivers: cleared when it fails, set again once
        # the groups are back after the outage (`wait_ready`).
        self._ready = asyncio.Event()
        self._ready.set()
        self._outages = 0  # a _rejoin of an earlier outage must not declare a later one over
        self._heard = 0.0  # loop time the layer last delivered anything (a probe or an event)
        self._failovers = chat_redis.failovers()  # Redis primary changes seen so far (Sentinel)
        self.sequencer = Sequencer(self._deliver, REORDER_WAIT, lambda delay, callback: asyncio.get_running_loop().call_later(delay, callback))

    def _background(self, coroutine: Any) -> None:
        """Run a short layer call without waiting for it (kept referenced until done)."""
        task = asyncio.ensure_future(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- connections -----------------------------------------------------------

    def connection_name(self) -> str:
        """A name for one connection, unique across processes (skip_channel,
        presence entries)."""
        return f"conn.{self._prefix}.{next(self._names)}"

    def register(self, listener: Listener) -> None:
        self.listeners.setdefault(listener, set())

    async def wait_ready(self, timeout: float) -> bool:
        """False if the layer is failing and not back within `timeout`: a
        connection set up now would miss what the layer does not deliver
        (during an outage, or until the hub's groups are re-added after it)."""
        if self._ready.is_set():
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def forget(self, listener: Listener) -> None:
        """The connection is gone: out of every group now; layer groups left
        empty are discarded in the background."""
        for group in self.listeners.pop(listener, ()):
            if self._remove(group, listener):
                self._background(self._discard_if_empty(group))

    async def join(self, group: str, listener: Listener) -> None:
        """Events of `group` reach `listener` once this returns."""
        await self._start()
        self.members.setdefault(group, set()).add(listener)
        self.listeners.setdefault(listener, set()).add(group)
        if group in self._layer_groups:
            return
        try:
            async with self._lock(group):
                if group not in self._layer_groups:
                    async with self._layer_calls:
                        await self.layer.group_add(group, self.channel)
                    self._layer_groups.add(group)
        except BaseException:
            if self._remove(group, listener):
                self._background(self._discard_if_empty(group))  # group_add may have reached the layer
            raise

    async def leave(self, group: str, listener: Listener) -> None:
        if self._remove(group, listener):
            await self._discard_if_empty(group)

    def _remove(self, group: str, listener: Listener) -> bool:
        """True if the group has no local member left."""
        groups = self.listeners.get(listener)
        if groups is not None:
            groups.discard(group)
        members = self.members.get(group)
        if members is None:
            return False
        members.discard(listener)
        if members:
            return False
        del self.members[group]
        self.sequencer.forget(group)  # a later first member starts afresh
        return True

    async def _discard_if_empty(self, group: str) -> None:
        try:
            async with self._lock(group):
                if group in self._layer_groups and not self.members.get(group):
                    self._layer_groups.discard(group)
                    async with self._layer_calls:
                        await self.layer.group_discard(group, self.channel)
        except Exception as exc:  # the layer is down: its groups are gone or expire
            logger.warning("hub: could not leave %s: %s", group, exc)
        finally:
            if group not in self._layer_groups and not self.members.get(group):
                self._group_locks.pop(group, None)

    def _lock(self, group: str) -> asyncio.Lock:
        lock = self._group_locks.get(group)
        if lock is None:
            lock = self._group_locks[group] = asyncio.Lock()
        return lock

    # -- receiving -------------------------------------------------------------

    async def _start(self) -> None:
        if self.channel is not None:
            return
        async with self._start_lock:
            if self.channel is None:
                channel = await self.layer.new_channel()
                self.channel = channel
                self._heard = asyncio.get_running_loop().time()
                self._tasks = [asyncio.ensure_future(task) for task in (self._receive_loop(channel), self._maintain(), self._probe())]

    async def _receive_loop(self, channel: str) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelled()
                failures += 1
                self._failed(f"receive failed: {exc}")
                await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1])
                continue
            stop_if_cancelled()
            failures = 0
            self._heard = asyncio.get_running_loop().time()
            if self._failing:
                logger.warning("hub: channel layer back")
                self._failing = False
                self._tasks = [task for task in self._tasks if not task.done()]
                self._tasks.append(asyncio.ensure_future(self._rejoin(after_outage=True)))
            if message.get("type") != PROBE_TYPE:
                self.dispatch(message)
            # What else waits for this hub, in the same loop turn: the
            # connections' writes of all of it leave merged, one send per
            # socket (chatsite.daphne_adapter.FrameWriter).
            for more in await self._waiting(channel):
                if more.get("type") != PROBE_TYPE:
                    self.dispatch(more)

    async def _waiting(self, channel: str) -> list[dict[str, Any]]:
        """Messages already queued for the hub's channel, oldest first, in one
        Redis call (RedisChannelLayer: a ZPOPMIN of up to RECEIVE_BATCH off the
        process's channel key, what its receive pops one at a time; other
        layers: none, the pub/sub layer's reader queues what one socket read
        brought). A failure here loses nothing (nothing was popped): the next
        receive meets it."""
        layer = self.layer
        if not isinstance(layer, RedisChannelLayer) or "!" not in channel:
            return []
        real = layer.non_local_name(channel)
        try:
            popped = await layer.connection(layer.consistent_hash(real)).zpopmin(layer.prefix + real, RECEIVE_BATCH)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stop_if_cancelled()
            logger.debug("hub: batch read failed: %s", exc)
            return []
        messages = []
        for member, _score in popped:
            message = layer.deserialize(member)
            # One channel (send) or several of this process (group_send), as receive() reads it.
            targets = message.pop("__asgi_channel__", channel)
            for target in targets if isinstance(targets, list) else (targets,):
                if target == channel:
                    messages.append(message)
                else:  # another receiver of this process's layer (none today): where receive() would put it
                    layer.receive_buffer[target].put_nowait(message)
        return messages

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PROBE_EVERY)
            if chat_redis.failovers() != self._failovers:
                # A Sentinel failover: the dead primary's newest writes (a
                # broadcast on its way) may not have reached the replica.
                self._failovers = chat_redis.failovers()
                self._failed("the Redis primary changed (Sentinel failover)")
            try:
                await asyncio.wait_for(self.layer.send(self.channel, {"type": PROBE_TYPE}), PROBE_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except ChannelFull:
                pass  # the layer answers; the hub is just behind
            except Exception as exc:
                stop_if_cancelled()
                self._failed(f"probe not sent: {exc}")
                continue
            # Anything received counts: under a heavy fan-out the probe waits
            # behind the events, which keep arriving.
            if loop.time() - self._heard > PROBE_TIMEOUT:
                self._failed(f"nothing received for {PROBE_TIMEOUT:.0f} s, not even the probe")

    def _failed(self, reason: str) -> None:
        """Broadcasts may have been lost: every connection is closed (1011) and
        its client resumes with afterId. Groups are re-added once a probe
        comes back. Once per outage."""
        if self._failing:
            return
        self._failing = True
        self._outages += 1
        self.sequencer.reset()
        self._ready.clear()
        logger.error("hub: channel layer failing (%s); closing %d connections", reason, len(self.listeners))
        for listener in tuple(self.listeners):
            try:
                listener.on_layer_failed()
            except Exception:
                logger.exception("hub: closing a connection failed")

    def dispatch(self, message: dict[str, Any]) -> None:
        group = message.get("group")
        if not isinstance(group, str) or not self.members.get(group):
            return  # no local member (any more)
        members = self.members[group]
        if message.get("type") == EVENT_TYPE:
            try:
                event = Broadcast(message)
            except (KeyError, TypeError):  # not from realtime.events.envelope: never the layer's fault
                logger.error("hub: a malformed event for %s dropped", group)
                return
            try:
                self.sequencer.put(event)  # -> _deliver, in order
            except Exception:  # ids of another type (another version's events): never stop the receive loop
                logger.exception("hub: reordering %s failed; delivered as it came", event.kind)
                self._deliver(event)
            return
        self.sequencer.flush(group)  # nothing held is overtaken by a control message
        for listener in tuple(members):
            try:
                listener.on_control(message)
            except Exception:
                logger.exception("hub: delivering %s failed", message.get("type"))

    def _deliver(self, event: Broadcast) -> None:
        members = self.members.get(event.group)
        if not members:
            return
        DELIVERIES.inc(len(members))
        for listener in tuple(members):
            try:
                listener.on_broadcast(event)
            except Exception:
                logger.exception("hub: delivering %s failed", event.kind)

    async def _rejoin(self, after_outage: bool = False) -> None:
        """After an outage (a restarted Redis forgot its groups) and now and
        then (channels-redis expires members after a day): every group with
        local members is added again, any left without members discarded.
        After an outage, new connections wait for it (`wait_ready`). A group
        that could not be re-added is forgotten as a layer group, so the next
        local join adds it again."""
        outage = self._outages
        for group in list(self._layer_groups | set(self.members)):
            try:
                async with self._lock(group):
                    if self.members.get(group):
                        async with self._layer_calls:
                            await self.layer.group_add(group, self.channel)
                        self._layer_groups.add(group)
                    elif group in self._layer_groups:
                        self._layer_groups.discard(group)
                        async with self._layer_calls:
                            await self.layer.group_discard(group, self.channel)
            except Exception as exc:
                self._layer_groups.discard(group)
                logger.warning("hub: could not re-join %s: %s", group, exc)
        if after_outage and not self._failing and outage == self._outages:
            self._ready.set()

    async def _maintain(self) -> None:
        for rounds in itertools.count(1):
            await asyncio.sleep(MAINTENANCE_EVERY)
            for hook in tuple(_maintenance_hooks):
                try:
                    await hook(self)
                except Exception as exc:  # the next round tries again
                    logger.warning("hub: maintenance hook %s failed: %s", getattr(hook, "__qualname__", hook), exc)
            if rounds % REJOIN_EVERY_ROUNDS == 0:
                try:
                    await self._rejoin()
                except Exception as exc:
                    logger.warning("hub: re-adding groups failed: %s", exc)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.sequencer.clear()

    async def aclose(self) -> None:
        """Stop the hub's tasks and wait for them. channels-redis's receive can
        swallow a cancellation and go on waiting, so the receiver is also woken
        with a probe (it stops after any receive once cancelled)."""
        self.close()
        if self.channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.layer.send(self.channel, {"type": PROBE_TYPE}), 2)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)


def stop_if_cancelled() -> None:
    """A layer call interrupted by cancelling the hub's task can surface as a
    connection error (redis-py): the task must still end, or closing the
    event loop waits on it forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def close_hubs() -> None:
    """Stop the hubs of event loops that are neither running nor closed: the
    in-process tests close a loop per test (tests/conftest.py); a server's
    loop lives as long as the process."""
    for loop, hub in list(_hubs.items()):
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(hub.aclose())
        _hubs.pop(loop, None)


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in production; the
    in-process tests get a new one with each loop or layer)."""
    loop = asyncio.get_running_loop()
    layer = channel_layer()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        if hub is not None:
            hub.close()
        hub = _hubs[loop] = Hub(layer)
    return hub
