"""The message store's start-up fallback (cassandra -> mongodb -> sql), what
/healthz says about it, and what a store outage during a send looks like to
the sender and to the channel: each on the real servers (scripts/services).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlparse

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

import messagestore as store_module
from messagestore import MessageStore, NewMessage, StoreError, get_store, reset_store
from tests import ferretdb
from tests.conftest import require_service
from tests.messagestore.stores import REAL_SERVERS, RUN, _mongodb_uri, build_store
from tests.schemas import check_chat_event

pytestmark = pytest.mark.django_db(transaction=True)



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fresh_store():
    reset_store()
    yield
    reset_store()


def served_store_name() -> str:
    body = Client().get("/healthz").json()
    return body["checks"]["messageStore"]


MONGODB_COLLECTIONS = ("stream_heads", "message_buckets", "message_locators", "client_ids", "read_pointers", "locks", "reactions", "replies", "changes")


@pytest.mark.needs_mongodb
def test_ferretdb_sqlite_id_lookups_are_served_by_an_index(mongodb_config, tmp_path):
    """FerretDB 1.24 (SQLite) looks `_id` up with an expression its own `_id`
    index does not match, so every lookup scans; the operator tool
    scripts/ferretdb_index.py adds an index on that expression to every
    collection, once, and says so when pointed at the wrong directory."""
    directory = ferretdb.sqlite_dir()
    require_service("FERRETDB_SQLITE_DIR", directory)
    for collection in MONGODB_COLLECTIONS:
        assert "USING INDEX" in ferretdb.lookup_plan(directory, f"chat_test_{RUN}", collection), collection
    assert "indexed 0 collection table(s)" in ferretdb.index(directory, f"chat_test_{RUN}")  # already there

    bare = build_store("mongodb", {"uri": _mongodb_uri(f"chat_bare_{RUN}")})
    try:
        bare.ensure_schema()
        assert "SCAN" in ferretdb.lookup_plan(directory, f"chat_bare_{RUN}", "message_locators")  # FerretDB's own index: unused
        assert f"indexed {len(MONGODB_COLLECTIONS)} collection table(s)" in ferretdb.index(directory, f"chat_bare_{RUN}")
        assert "USING INDEX" in ferretdb.lookup_plan(directory, f"chat_bare_{RUN}", "message_locators")
    finally:
        bare.drop_schema()

    wrong = subprocess.run([sys.executable, str(ferretdb.TOOL), str(tmp_path), "--database", "chat"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "-sqlite-url" in wrong.stderr


def fallback_reasons(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "messagestore" and r.levelname == "CRITICAL"]


@pytest.mark.needs_mongodb
def test_unreachable_cassandra_falls_back_to_mongodb(settings, caplog, mongodb_config, fresh_store):
    settings.CHAT_MESSAGE_STORE = "cassandra"
    settings.CASSANDRA_PORT = free_port()
    settings.MONGODB_URI = mongodb_config["uri"]
    settings.CHAT_STORE_TIMEOUT = 1.0
    assert get_store().name == "mongodb"
    reasons = fallback_reasons(caplog)
    assert any("cassandra is unavailable" in r and "unreachable" in r and "falling back to the mongodb store" in r for r in reasons), reasons
    assert served_store_name() == "mongodb"
    stored, _ = get_store().append(NewMessage(stream=f"ch:{RUN}", author_id=1, content="via the fallback"))
    assert get_store().get(f"ch:{RUN}", stored.id).content == "via the fallback"


def test_unreachable_cassandra_and_mongodb_fall_back_to_sql(settings, caplog, fresh_store):
    settings.CHAT_MESSAGE_STORE = "cassandra"
    settings.CASSANDRA_PORT = free_port()
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/chat"
    settings.CHAT_STORE_TIMEOUT = 0.5
    started = time.monotonic()
    assert get_store().name == "sql"
    assert time.monotonic() - started < 10, "a dead store must fail fast"
    reasons = fallback_reasons(caplog)
    assert any("cassandra is unavailable" in r and "falling back to the mongodb store" in r for r in reasons), reasons
    assert any("mongodb is unavailable" in r and "falling back to the sql store" in r for r in reasons), reasons
    assert served_store_name() == "sql"


def test_unreachable_mongodb_falls_back_to_sql(settings, caplog, fresh_store):
    settings.CHAT_MESSAGE_STORE = "mongodb"
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/chat"
    settings.CHAT_STORE_TIMEOUT = 0.5
    assert get_store().name == "sql"
    assert any("mongodb is unavailable" in r for r in fallback_reasons(caplog))
    assert served_store_name() == "sql"


def test_mongodb_without_uri_is_sql_and_said_so(settings, caplog, fresh_store):
    settings.CHAT_MESSAGE_STORE = "mongodb"
    settings.MONGODB_URI = ""
    assert get_store().name == "sql"
    assert any("MONGODB_URI is not set" in r for r in fallback_reasons(caplog))


@pytest.mark.parametrize("name", REAL_SERVERS)
def test_configured_store_serves_when_reachable(name, request, settings, caplog, fresh_store):
    config = request.getfixturevalue(f"{name}_config")
    settings.CHAT_MESSAGE_STORE = name
    if name == "cassandra":
        settings.CASSANDRA_HOSTS = ",".join(config["hosts"])
        settings.CASSANDRA_PORT = config["port"]
        settings.CASSANDRA_KEYSPACE = config["keyspace"]
        settings.MONGODB_URI = ""
    else:
        settings.MONGODB_URI = config["uri"]
    assert get_store().name == name
    assert fallback_reasons(caplog) == []
    assert served_store_name() == name


class TcpProxy:
    """Forwards a loopback port to a real server until stop(): a store behind
    it loses its server the way it would when the server dies."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.stopped = True
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def store_behind(name: str, config: dict[str, Any]) -> tuple[MessageStore, TcpProxy]:
    if name == "cassandra":
        proxy = TcpProxy(config["hosts"][0], config["port"])
        return build_store(name, {**config, "hosts": ["127.0.0.1"], "port": proxy.port, "timeout": 1.0}), proxy
    target = urlparse(config["uri"])
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 27017)
    return build_store(name, {"uri": target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(), "timeout": 1.0}), proxy


def forget(store: MessageStore) -> None:
    """Close the connections of a store made by store_behind()."""
    if store.name == "cassandra":
        from messagestore.cassandra import disconnect

        disconnect(store.connection_name)
    else:
        store.db.client.close()


@pytest.mark.parametrize("name", REAL_SERVERS)
def test_outage_makes_append_raise_store_error_quickly(name, request, stream):
    store, proxy = store_behind(name, request.getfixturevalue(f"{name}_config"))
    try:
        stored, created = store.append(NewMessage(stream=stream, author_id=1, content="before"))
        assert created and store.get(stream, stored.id).content == "before"
        proxy.stop()
        started = time.monotonic()
        with pytest.raises(StoreError):
            store.append(NewMessage(stream=stream, author_id=1, content="during"))
        assert time.monotonic() - started < 10
        with pytest.raises(StoreError):
            store.ping()
    finally:
        proxy.stop()
        forget(store)


async def _receive(comm, timeout: float = 3) -> dict:
    event = await comm.receive_json_from(timeout)
    check_chat_event(event)
    return event


async def _request(comm, event: dict) -> dict:
    await comm.send_json_to({**event, "requestId": "rq"})
    while True:
        answer = await _receive(comm, timeout=15)
        if answer.get("requestId") == "rq":
            return answer


async def _joined(user, channel):
    from chatsite.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/chat/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    assert (await _receive(comm))["type"] == "connected"
    answer = await _request(comm, {"type": "join_channel", "channelId": channel.id})
    assert answer["type"] == "joined_channel"
    return comm


@pytest.mark.parametrize("name", REAL_SERVERS)
async def test_store_outage_during_send_is_server_error_and_nothing_is_broadcast(name, request, school):
    store, proxy = store_behind(name, request.getfixturevalue(f"{name}_config"))
    store_module._store = store
    alice = bob = None
    try:
        alice = await _joined(school.alice, school.general)
        bob = await _joined(school.bob, school.general)
        answer = await _request(alice, {"type": "send_message", "channelId": school.general.id, "content": "before"})
        assert answer["type"] == "new_message"
        event = await _receive(bob)
        while event["type"] != "new_message":
            event = await _receive(bob)
        assert event["message"]["content"] == "before"
        proxy.stop()
        answer = await _request(alice, {"type": "send_message", "channelId": school.general.id, "content": "lost?", "clientId": "c-lost"})
        assert answer["type"] == "error" and answer["code"] == "server_error"
        while not await bob.receive_nothing(0.5):
            assert (await bob.receive_json_from())["type"] != "new_message"
    finally:
        for comm in (alice, bob):
            if comm is not None:
                await comm.disconnect()
        proxy.stop()
        forget(store)
        reset_store()
