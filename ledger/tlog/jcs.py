"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and strict JSON reading.

A signed report is signed over the SHA-256 of its canonical JSON, so the verifier must get the
same bytes from the same JSON value whatever the pretty-printing, key order or escapes of the
file it was handed. RFC 8785 defines those bytes: object members sorted by their UTF-16 code
units, no whitespace, strings with the minimal escapes and UTF-8, numbers as ECMAScript prints
them. The serialisation is Trail of Bits' ``rfc8785`` package: small, pure Python, no
dependencies, and tested against the RFC's vectors including the number forms (the part a
hand-written subset gets wrong); tests/unit/test_signed_report.py checks the RFC's examples too.

:func:`loads_strict` reads JSON the way a verifier must: a repeated object key (which parsers
resolve differently, so two verifiers could see two documents) and NaN/Infinity are refused.
"""

from __future__ import annotations

import json

import rfc8785

from .errors import FormatError

MAX_JSON_BYTES = 256 * 1024 * 1024  # a report of hundreds of thousands of lines with receipts


def canonical(value) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value (dicts, lists, str, int, float, bool, None)."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.IntegerDomainError as err:
        raise FormatError("canonical JSON", f"{err.args[0].split()[0]} is beyond ±(2^53-1): a JSON number (an "
                          "IEEE double) cannot hold it exactly, so it has no RFC 8785 form") from None
    except rfc8785.CanonicalizationError as err:
        raise FormatError("canonical JSON", str(err)) from None
    except TypeError as err:  # a value JSON has no form for
        raise FormatError("canonical JSON", f"not a JSON value: {err}") from None


def _pairs(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise FormatError("JSON", f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _constant(name: str):
    raise FormatError("JSON", f"{name} is not a JSON number")


def loads_strict(data: bytes | str, what: str = "JSON"):
    """Parse JSON, refusing repeated keys, NaN and Infinity; FormatError names the line and column."""
    if isinstance(data, bytes):
        if len(data) > MAX_JSON_BYTES:
            raise FormatError(what, f"{len(data)} bytes is above the {MAX_JSON_BYTES}-byte limit")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise FormatError(what, f"not valid UTF-8 (byte {err.start})") from None
    try:
        return json.loads(data, object_pairs_hook=_pairs, parse_constant=_constant)
    except json.JSONDecodeError as err:
        raise FormatError(what, f"not JSON: {err.msg} (column {err.colno})", err.lineno) from None
    except FormatError as err:
        raise FormatError(what, err.reason) from None
