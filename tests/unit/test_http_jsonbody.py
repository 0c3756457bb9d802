"""orjson, when installed, encodes pages and decodes stored rows exactly as the standard json module would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

from fastapi.responses import JSONResponse
from hostile import TERMINAL_ATTACK, payloads

from ledger.http.jsonbody import PageJSONResponse

HOSTILE_STRINGS = [next(p) for p in [payloads()] for _ in range(7)] + [TERMINAL_ATTACK, "<script>\"'&"]
ROWS = [
    {"items": [{"note": s, "n": 2**63 + 5, "ok": True, "none": None, "list": [s, -1, 0]} for s in HOSTILE_STRINGS],
     "next_cursor": None, "limit": 100, "as_of": "2026-01-01T00:00:00.000000Z", "time_zone": "UTC"},
    {"items": [{"line separators": "\u2028\u2029", "controls": "\x00\x1f\x7f", "quote": '"\\', "emoji": "\U0001f600"}]},
    {},
]


@pytest.mark.parametrize("body", ROWS)
def test_pages_are_the_bytes_starlette_writes(body):
    assert PageJSONResponse(body).body == JSONResponse(body).body


def test_what_orjson_refuses_goes_through_the_standard_encoder():
    """A lone surrogate (lenient UTF-8) and an integer beyond 64 bits: the same outcome as Starlette's."""
    assert PageJSONResponse({"n": 2**70}).body == JSONResponse({"n": 2**70}).body
    with pytest.raises(UnicodeEncodeError):
        JSONResponse({"t": "\udcff"})
    with pytest.raises(UnicodeEncodeError):
        PageJSONResponse({"t": "\udcff"})


STORED = ['{"a":"\\u2028<script>","b":[1,-2,null,true],"c":{"d":"\\u00e9\\ud83d\\ude00"}}',
          '{"big":123456789012345678901234567890}', '{"neg":-9223372036854775809}',
          '{"id":"SUP-12345678901234567890"}', '{"lone":"\\udcff"}', '{"x":"' + "\udcff" + '"}']


@pytest.mark.parametrize("text", STORED)
def test_stored_rows_decode_the_same_with_or_without_orjson(text):
    """to_row's decoder gives the standard decoder's dict, for what orjson reads and what it refuses."""
    import json

    from ledger.audit.query import _decode

    assert _decode(text) == json.loads(text)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.text(max_size=6), _JSON, max_size=6))
@settings(max_examples=300, deadline=None)
def test_stored_canonical_text_decodes_as_the_standard_decoder_reads_it(event):
    """The ledger's own form (compact, sorted keys, UTF-8), integers of any size: the round-trip check never
    lets orjson's float of a long integer through."""
    import json

    from ledger.audit.query import _decode
    from ledger.model.events import canonical_json

    try:
        text = canonical_json(event)
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate cannot be stored as UTF-8 text
        return
    decoded = _decode(text)
    assert decoded == json.loads(text)
    assert json.dumps(decoded, sort_keys=True) == json.dumps(json.loads(text), sort_keys=True)  # 1 == 1.0 hides floats
