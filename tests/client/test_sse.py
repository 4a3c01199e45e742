"""Byte-level event-stream cases (issue cases 1 to 4) and the WHATWG rules."""

from __future__ import annotations

import pytest

from bkbn_pipelines import APIStreamError
from bkbn_pipelines.client import SSEDecoder


def decode(*chunks: bytes, **kwargs) -> list:
    decoder = SSEDecoder(**kwargs)
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return [(e.event, e.data, e.id) for e in events]


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def test_case_01_comment_between_events_gives_no_empty_event():
    body = (
        b'event: node.done\nid: r:1\ndata: {"id":"a","ms":3}\n\n'
        b": ping\n\n"
        b'event: node.done\nid: r:2\ndata: {"id":"b","ms":4}\n\n'
    )
    assert decode(body) == [
        ("node.done", '{"id":"a","ms":3}', "r:1"),
        ("node.done", '{"id":"b","ms":4}', "r:2"),
    ]
    assert decode(*bytewise(body)) == decode(body)


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("split", [False, True], ids=["whole", "one-byte-chunks"])
def test_case_02_line_ends_also_split_across_chunks(end: bytes, split: bool):
    body = end.join([b"event: result", b"id: r:9", b'data: {"url":"u"}', b"", b""])
    parts = bytewise(body) if split else [body]
    assert decode(*parts) == [("result", '{"url":"u"}', "r:9")]


def test_case_02_cr_at_chunk_end_followed_by_lf_is_one_line_end():
    # "\r" ends one chunk, "\n" starts the next: one line end, not an empty line.
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [("message", "a\nb", "")]


def test_case_03_leading_bom_is_stripped_once():
    body = b"\xef\xbb\xbfevent: a\ndata: 1\n\nevent: b\ndata: 2\n\n"
    assert decode(body) == [("a", "1", ""), ("b", "2", "")]
    assert decode(*bytewise(body)) == [("a", "1", ""), ("b", "2", "")]
    # Only one BOM is stripped: a second one is part of the field name, so it is ignored.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [("message", "y", "")]


def test_case_04_utf8_split_inside_a_character():
    text = "Franche-Comté ✅"
    raw = f"data: {text}\n\n".encode()
    cut = raw.index("é".encode()) + 1  # between the two bytes of é
    assert decode(raw[:cut], raw[cut:]) == [("message", text, "")]
    assert decode(*bytewise(raw)) == [("message", text, "")]


def test_blank_dispatch_without_data_is_not_an_event():
    assert decode(b"event: x\n\n\n\nid: 5\n\n") == []


def test_unterminated_event_at_end_is_dropped():
    assert decode(b"data: complete\n\ndata: half") == [("message", "complete", "")]


def test_fields_follow_whatwg_rules():
    body = b"data\ndata:no-space\ndata:  two\nid: a\x00b\nretry: 250\nretry: x\nfoo: bar\n\n"
    decoder = SSEDecoder()
    (event,) = decoder.feed(body)
    assert event.data == "\nno-space\n two"
    assert event.id == ""  # an id with NUL is ignored
    assert decoder.retry == 250


def test_event_over_the_size_cap_is_refused():
    decoder = SSEDecoder(max_event_size=100)
    with pytest.raises(APIStreamError, match="100"):
        for _ in range(20):
            decoder.feed(b"data: " + b"x" * 10 + b"\n")
    # A single endless line without a line end is caught too.
    with pytest.raises(APIStreamError):
        SSEDecoder(max_event_size=100).feed(b"data: " + b"y" * 200)


def test_long_line_in_many_small_chunks():
    line = b"data: " + b"z" * (2 * 1024 * 1024) + b"\n\n"
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(line), 1024):
        events.extend(decoder.feed(line[i : i + 1024]))
    assert len(events) == 1 and len(events[0].data) == 2 * 1024 * 1024


def test_lf_after_a_chunk_ending_in_cr_is_not_a_blank_line():
    # "data: a\r" | "\n" | "data: b\r\n\r\n": one event "a\nb", not an early dispatch of "a".
    assert decode(b"data: a\r", b"\n", b"data: b\r\n\r\n") == [("message", "a\nb", "")]
    # An empty chunk (or half a UTF-8 character) between CR and LF changes nothing.
    assert decode(b"data: a\r", b"", b"\ndata: \xc3", b"\xa9\r", b"\n\r\n") == [
        ("message", "a\né", "")
    ]
