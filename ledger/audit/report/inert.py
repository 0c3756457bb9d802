"""Making stored text harmless to whoever reads the output: spreadsheets, terminals, JSON viewers.

    csv_cell("=HYPERLINK(...)")       # "'=HYPERLINK(...)": a spreadsheet shows text, runs nothing
    terminal_text("a\\x1b[2Jb")       # "a\\\\x1b[2Jb": the escape is shown, not obeyed
    fit("e\\u0301t\\u00e9", 3)        # cut and padded by grapheme and display width
    json_inert('"\\u202e"')           # C1 / format characters written as \\uXXXX escapes

The ledger keeps free text (names, addresses, notes, references) exactly as a
producer sent it: it is evidence. It is made inert where it leaves the
ledger instead, in the one way each reader needs:

* **CSV** (OWASP "CSV Injection"): a cell that begins with ``= + - @``, a tab
  or a carriage return is prefixed with a single quote, so Excel, LibreOffice
  and Google Sheets read it as text, not as a formula or DDE call. The
  full-width forms ``＝ ＋ － ＠`` are treated the same: some spreadsheet input
  paths (Japanese/Chinese locales) fold them to their ASCII forms. The quote
  is visible to a reader, which is the point: the value was not what it
  looked like.
* **Terminal tables**: every C0 and C1 control, DEL, and every format
  character (Unicode category Cf: bidi embeddings, overrides and isolates,
  zero-width space and joiners, word joiner, BOM, tag characters) and line /
  paragraph separator is written as a visible escape (``\\x1b``, ``\\n``,
  ``\\u202e``, ``\\U000e0001``); a backslash is doubled so an escape the
  attacker typed cannot pass for one the ledger made. Cells are cut by
  grapheme cluster and display width, so a cut never splits an escape, a
  base letter from its combining marks, or a wide character in half.
* **JSON**: lossless, so only the characters a terminal would obey and the
  invisible ones become ``\\uXXXX`` escapes; a JSON parser reads back the
  same string.

Python's standard library has no grapheme segmentation (UAX #29); the cut
uses an approximation that keeps together a base character and what follows
it of: combining marks (Mn, Mc, Me, variation selectors included), emoji
skin-tone modifiers, a second regional indicator (flags) and Hangul
medial/final jamo. After escaping no ZWJ or other control is left to join.
"""

from __future__ import annotations

import re
import unicodedata

#: What a cell may start with for a spreadsheet to take it as a formula (OWASP), plus full-width forms.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_CANDIDATE = re.compile(r"[\x00-\x1f\\\x7f-\U0010ffff]")  # ASCII printable text skips the slow path
_JSON_CANDIDATE = re.compile(r"[\x7f-\U0010ffff]")
_REGIONAL = range(0x1F1E6, 0x1F200)
_SKIN_TONE = range(0x1F3FB, 0x1F400)
_JAMO_ATTACHED = (range(0x1160, 0x1200), range(0xD7B0, 0xD800))  # medial vowels and final consonants


def csv_cell(text: str) -> str:
    """``text`` for a CSV cell, with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def is_invisible(ch: str) -> bool:
    """A control (Cc), format (Cf) or line/paragraph separator (Zl, Zp) character."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def _escape(ch: str) -> str:
    short = _SHORT.get(ch)
    if short:
        return short
    if not is_invisible(ch):
        return ch
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def terminal_text(text: str) -> str:
    """``text`` with every control and invisible formatting character shown as an escape."""
    return _CANDIDATE.sub(lambda m: _escape(m.group()), text)


def _attaches(ch: str) -> bool:
    """True when ``ch`` belongs to the grapheme cluster of the character before it."""
    n = ord(ch)
    if n < 0x300:
        return False
    return (unicodedata.category(ch) in ("Mn", "Mc", "Me") or n in _SKIN_TONE
            or any(n in r for r in _JAMO_ATTACHED))


def graphemes(text: str) -> list[str]:
    """``text`` (already escaped for the terminal) split into clusters; each escape is one cluster."""
    out: list[str] = []
    i, end = 0, len(text)
    while i < end:
        ch = text[i]
        if ch == "\\" and i + 1 < end:  # an escape made by terminal_text: keep it whole
            size = {"x": 4, "u": 6, "U": 10}.get(text[i + 1], 2)
            out.append(text[i:i + size])
            i += size
            continue
        j = i + 1
        if ord(ch) in _REGIONAL and j < end and ord(text[j]) in _REGIONAL:
            j += 1
        while j < end and _attaches(text[j]):
            j += 1
        out.append(text[i:j])
        i = j
    return out


def cluster_width(cluster: str) -> int:
    """Columns a cluster takes in a terminal: 2 for wide and full-width characters, else 1."""
    if cluster.isascii():
        return len(cluster)
    if ord(cluster[0]) in _REGIONAL:  # a flag; a lone regional indicator too, on most terminals
        return 2
    return 2 if unicodedata.east_asian_width(cluster[0]) in ("W", "F") else 1


def width(text: str) -> int:
    """Display width of escaped text."""
    if text.isascii():
        return len(text)
    return sum(cluster_width(c) for c in graphemes(text))


def fit(text: str, columns: int, *, keep: bool = False) -> str:
    """Escaped ``text`` padded to ``columns``; cut with ``…`` by whole clusters when longer (unless ``keep``)."""
    used = width(text)
    if used > columns and not keep:
        kept, used = [], 0
        for cluster in graphemes(text):
            w = cluster_width(cluster)
            if used + w > columns - 1:
                break
            kept.append(cluster)
            used += w
        text = "".join(kept) + "…"
        used += 1
    return text + " " * max(0, columns - used)


def _json_escape(ch: str) -> str:
    if not is_invisible(ch):
        return ch
    n = ord(ch)
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


def json_inert(text: str) -> str:
    """JSON text (from ``json.dumps``) with DEL, C1 and format characters written as ``\\u`` escapes."""
    return _JSON_CANDIDATE.sub(lambda m: _json_escape(m.group()), text)
