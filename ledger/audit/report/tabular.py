"""Streaming writers for rows of query results: a terminal table, CSV, or one JSON array.

    write_rows(rows, "json", WHO_SAW_COLUMNS, sys.stdout)

Rows are written as they come, so a million rows go out in constant memory:
the JSON array is opened, each object written with its separator, then
closed; CSV goes row by row. The table buffers only its first page
(:data:`PAGE` rows) to size the columns, then keeps those widths; a longer
cell later on is cut with ``…`` (use json or csv for complete values). A
column marked ``keep`` (event ids) is never cut.

Every writer makes stored text inert for its reader (:mod:`.inert`): the
table shows control and invisible formatting characters as escapes and cuts
by grapheme; CSV cells that a spreadsheet would run as formulas get a
leading ``'``; JSON escapes C1 and format characters.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Iterable, TextIO

from .inert import csv_cell, fit, json_inert, terminal_text, width

PAGE = 200
MAX_WIDTH = 30
FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class Column:
    """One output column: a header for the table, a name for CSV, and how to read it from a row."""

    name: str  # CSV header
    header: str  # table header
    get: Callable[[dict], object]
    keep: bool = False  # never cut in the table (ids)
    full: Callable[[dict], object] | None = None  # the exact value for CSV when the table shortens it


def cell(value: object, *, for_csv: bool = False) -> str:
    """A value as text: None is empty, lists joined with '; ', booleans yes/no (true/false in CSV)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("true" if value else "false") if for_csv else ("yes" if value else "no")
    if isinstance(value, (list, tuple)):
        return "; ".join(cell(v, for_csv=for_csv) for v in value)
    return str(value)


def write_json_array(rows: Iterable[dict], out: TextIO, to_dict: Callable[[object], dict] | None = None) -> int:
    """One JSON array, one object per line, streamed; returns the number of rows."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json_inert(json.dumps(to_dict(row) if to_dict else row, ensure_ascii=False, sort_keys=True)))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_csv(rows: Iterable, columns: list[Column], out: TextIO) -> int:
    """CSV with a header line, streamed, formula-like cells neutralised; returns the number of rows."""
    # CRLF (RFC 4180): with it the writer quotes a cell holding a bare CR, which a spreadsheet would
    # otherwise take as a row break (a new row starting with an unneutralised formula).
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    count = 0
    for row in rows:
        writer.writerow([csv_cell(cell((c.full or c.get)(row), for_csv=True)) for c in columns])
        count += 1
    return count


def write_table(rows: Iterable, columns: list[Column], out: TextIO, *, empty: str = "(no rows)") -> int:
    """An aligned text table sized on the first page of rows; returns the number of rows."""
    it = iter(rows)
    first = [[terminal_text(cell(c.get(row))) for c in columns] for row in islice(it, PAGE)]
    if not first:
        out.write(empty + "\n")
        return 0
    widths = []
    for i, c in enumerate(columns):
        widest = max([len(c.header)] + [width(r[i]) for r in first])
        widths.append(widest if c.keep else min(widest, max(MAX_WIDTH, len(c.header))))

    def line(cells: list[str]) -> str:
        return "  ".join(fit(text, w, keep=c.keep) for text, w, c in zip(cells, widths, columns)).rstrip() + "\n"

    out.write(line([c.header for c in columns]))
    out.write("  ".join("-" * w for w in widths) + "\n")
    count = 0
    for cells in first:
        out.write(line(cells))
        count += 1
    for row in it:
        out.write(line([terminal_text(cell(c.get(row))) for c in columns]))
        count += 1
    return count


def write_rows(rows: Iterable, fmt: str, columns: list[Column], out: TextIO,
               to_dict: Callable[[object], dict] | None = None) -> int:
    """Write ``rows`` in ``fmt`` (table, json or csv); returns how many were written."""
    if fmt == "json":
        return write_json_array(rows, out, to_dict)
    if fmt == "csv":
        return write_csv(rows, columns, out)
    return write_table(rows, columns, out)
