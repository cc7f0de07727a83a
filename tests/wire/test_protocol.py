import pytest

from wire.protocol import ProtocolError, decode_frame, error_event, is_safe_url, read_content, read_id


@pytest.mark.parametrize("text", [None, "nope", "[]", "3", '"s"', "null", "{}", '{"type": 1}', '{"type": null}'])
def test_decode_frame_rejects(text):
    with pytest.raises(ProtocolError) as err:
        decode_frame(text)
    assert err.value.code == "bad_request"


def test_decode_frame_keeps_request_id_for_the_error():
    with pytest.raises(ProtocolError) as err:
        decode_frame('{"type": 3, "requestId": "abc"}')
    assert error_event(err.value) == {"type": "error", "code": "bad_request", "message": err.value.message, "requestId": "abc"}


@pytest.mark.parametrize("value", [True, False, 0, -3, 1.0, "1", 2**53, [], {}])
def test_read_id_rejects(value):
    with pytest.raises(ProtocolError):
        read_id({"x": value}, "x")


def test_read_id_accepts_ids_below_2_53():
    assert read_id({"x": 2**53 - 1}, "x") == 2**53 - 1
    assert read_id({}, "x", required=False) is None


@pytest.mark.parametrize("content", ["", "   \n\t", "a\x00b", "\ud800", "x" * 11])
def test_read_content_rejects(content):
    with pytest.raises(ProtocolError):
        read_content({"content": content}, 10)


def test_read_content_trims_and_keeps_markup_as_text():
    assert read_content({"content": "  <b>hi</b>  "}, 10) == "<b>hi</b>"
    assert read_content({"content": " " + "x" * 10 + " "}, 10) == "x" * 10  # the limit applies after trimming


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://example.org/a.png", True),
        ("http://example.org", True),
        ("/media/a.pdf", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,x", False),
        ("//evil.example/x", False),
        ("/\\evil.example/x.pdf", False),
        ("https://ok.example/a\\b", False),
        ("/ok\n", False),
        ("ftp://x", False),
        ("https://exa mple.org", False),
    ],
)
def test_safe_urls(url, ok):
    assert is_safe_url(url) is ok


def test_rate_limited_error_has_whole_retry_after():
    event = error_event(ProtocolError("rate_limited", "slow down", retry_after=0.2), "r1")
    assert event == {"type": "error", "code": "rate_limited", "message": "slow down", "requestId": "r1", "retryAfter": 1}
