"""Contract tests of chatsite/daphne_adapter.py: one per patch, each failing
when the private part of daphne, autobahn or Twisted it relies on moves or
changes. Their behaviour through a real daphne runs in tests/e2e (1009,
prepared frames) and tests/reliability (1011, slow readers)."""

from __future__ import annotations

import inspect

import pytest
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from autobahn.websocket.protocol import WebSocketServerProtocol
from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import abstract, tcp
from twisted.web import http as twisted_http

from chatsite import daphne_adapter
from chatsite.daphne_adapter import AdapterVersionError, check_versions, queued_bytes, source_digest, upstream


def test_installed_versions_are_the_ones_the_patches_were_written_for():
    check_versions()  # what this module did at import


def test_another_version_is_refused_with_both_named():
    installed = {**daphne_adapter.WRITTEN_FOR, "Twisted": "99.1.0"}
    with pytest.raises(AdapterVersionError) as error:
        check_versions(installed.__getitem__)
    message = str(error.value)
    assert "Twisted 26.10.0" in message and "Twisted 99.1.0" in message and "daphne 4.2.3" in message


@pytest.mark.parametrize("name", sorted(daphne_adapter.UPSTREAM_DIGESTS))
def test_the_daphne_code_the_patches_copy_or_wrap_is_unchanged(name):
    assert source_digest(upstream(name)) == daphne_adapter.UPSTREAM_DIGESTS[name], (
        f"daphne's {name} changed: re-read it against chatsite/daphne_adapter.py, then update UPSTREAM_DIGESTS"
    )


def test_patch_1_clean_1009_needs_autobahns_fail_by_drop_option():
    assert "failByDrop" in inspect.signature(WebSocketFactory.setProtocolOptions).parameters
    assert "failByDrop" in AutobahnProtocol.CONFIG_ATTRS_COMMON


def test_patch_2_server_close_codes_need_send_close_frame():
    parameters = inspect.signature(AutobahnProtocol.sendCloseFrame).parameters
    assert {"code", "isReply"} <= parameters.keys()
    daphne_adapter.install(send_buffer_limit=1 << 20)
    sent: list[tuple] = []

    class Probe(WebSocketProtocol):
        def __init__(self) -> None:  # no connection: only the close path runs
            pass

        def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False):
            sent.append(("frame", code, isReply))

        def sendClose(self, code=None, reason=None):
            sent.append(("close", code))

    Probe().serverClose(1011)
    Probe().serverClose(1000)
    assert sent == [("frame", 1011, False), ("close", 1000)]


def test_patch_3_guarded_sends_need_the_protocol_states_and_the_size_option():
    for state in ("STATE_OPEN", "STATE_CLOSING", "STATE_CLOSED"):
        assert hasattr(AutobahnProtocol, state)
    assert "maxMessagePayloadSize" in AutobahnProtocol.CONFIG_ATTRS_COMMON


def test_patch_3_queued_bytes_reads_twisteds_write_buffers():
    source = inspect.getsource(abstract.FileDescriptor)
    for field in ("dataBuffer", "offset", "_tempDataBuffer", "_tempDataLen"):
        assert f"self.{field}" in source

    class Unstarted(abstract.FileDescriptor):
        def startWriting(self) -> None:  # no reactor: keep what is written queued
            pass

    descriptor = Unstarted()
    descriptor.connected = True
    assert queued_bytes(descriptor) == 0
    descriptor.write(b"x" * 300)
    descriptor.write(b"y" * 200)
    assert queued_bytes(descriptor) == 500
    descriptor.dataBuffer, descriptor.offset = b"z" * 100, 40  # partly sent by the kernel already
    assert queued_bytes(descriptor) == 560


def test_patch_4_prepared_frames_need_autobahns_send_state_and_plain_tcp_fields():
    made = inspect.getsource(AutobahnProtocol._connectionMade)
    for field in ("send_state", "send_queue", "_perMessageCompress"):
        assert f"self.{field} =" in made
    assert hasattr(AutobahnProtocol, "SEND_STATE_GROUND")
    assert tcp.Server.TLS is False and hasattr(tcp.Server, "abortConnection")
    assert "self.socket" in inspect.getsource(tcp.Connection)


def test_patch_6_bounded_bodies_need_the_channels_request_path_and_the_body_hooks():
    line = inspect.getsource(twisted_http.HTTPChannel.lineReceived)
    assert "self._path = request" in line, "the request line's path is where patch 6 reads it"
    headers = inspect.getsource(twisted_http.HTTPChannel.allHeadersReceived)
    assert headers.index("req.gotLength(") < headers.index("_send100Continue"), "gotLength comes before any 100 Continue"
    for hook in ("gotLength", "handleContentChunk", "process"):
        assert callable(getattr(WebRequest, hook))
    # Switching Twisted's own form parsing off is an attribute its
    # requestReceived reads, set by Request.__init__.
    assert "self._parsePOSTFormSubmission = parsePOSTFormSubmission" in inspect.getsource(twisted_http.Request.__init__)
    assert "and self._parsePOSTFormSubmission" in inspect.getsource(twisted_http.Request.requestReceived)


def test_patch_5_lighter_connections_need_the_handshake_fields_and_the_server_callbacks():
    handshake = inspect.getsource(WebSocketServerProtocol.processHandshake)
    assert "self.http_request_data" in handshake and "self.http_headers" in handshake
    assert callable(Server.handle_reply)
    assert "self.connections" in inspect.getsource(Server)


def test_patch_7_body_file_needs_twisteds_temporary_file_read_after_the_application_is_made():
    # A large body is in a temporary file (small ones in memory stay daphne's way) ...
    assert "return tempfile.TemporaryFile()" in inspect.getsource(twisted_http._getContentFile)
    # ... and daphne reads self.content into the queue only after create_application swapped it.
    process = inspect.getsource(daphne_adapter.upstream("WebRequest.process"))
    assert process.index("self.server.create_application") < process.index("chunk = self.content.read(buffer_size)")
