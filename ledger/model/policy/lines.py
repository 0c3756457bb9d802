"""Where each table and key of a TOML file starts, so errors can name the line.

``tomllib`` returns plain dicts without positions. This is a light second
pass over the text that records, for every table header (``[a.b]``,
``[[a.b]]``) and every ``key = value`` line, the path it defines and its
1-based line number. It only needs to be right for files ``tomllib`` has
already accepted, so it skips what cannot hold a key: the inside of
multi-line strings and of arrays or inline tables spanning lines (those
report the line of their key).

Paths are tuples of keys and, for arrays of tables, indices:
``("access", "roles", "support_agent", "allow", 0, "categories")``.
:meth:`LineIndex.line` falls back to the nearest enclosing path that has a
line, so every error has one.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _read_key(text: str, pos: int) -> tuple[list[str], int]:
    """A dotted key starting at ``pos``: its parts and the position after it."""
    parts: list[str] = []
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] in "\"'":
            quote = text[pos]
            end = pos + 1
            buf = []
            while end < n and text[end] != quote:
                if quote == '"' and text[end] == "\\" and end + 1 < n:
                    buf.append(text[end:end + 2].encode().decode("unicode_escape"))
                    end += 2
                    continue
                buf.append(text[end])
                end += 1
            parts.append("".join(buf))
            pos = end + 1
        else:
            m = _BARE.match(text, pos)
            if not m:
                return parts, pos
            parts.append(m.group())
            pos = m.end()
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == ".":
            pos += 1
            continue
        return parts, pos


def _depth_change(value: str, in_string: str | None) -> tuple[int, str | None]:
    """Net bracket depth of ``value`` outside strings, and any multi-line string left open."""
    depth, i, n = 0, 0, len(value)
    while i < n:
        if in_string:
            if value.startswith(in_string, i):
                i += len(in_string)
                in_string = None
                continue
            if in_string == '"""' and value[i] == "\\":
                i += 2
                continue
            i += 1
            continue
        c = value[i]
        if value.startswith('"""', i) or value.startswith("'''", i):
            in_string = value[i:i + 3]
            i += 3
            continue
        if c in "\"'":
            end = i + 1
            while end < n and value[end] != c:
                end += 2 if (c == '"' and value[end] == "\\") else 1
            i = end + 1
            continue
        if c == "#":
            break
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return depth, in_string


class LineIndex:
    """Path -> first line number, built from the text of a TOML document."""

    def __init__(self, text: str):
        self.lines: dict[tuple, int] = {}
        counts: dict[tuple, int] = {}
        table: tuple = ()
        depth, in_string = 0, None
        for number, raw in enumerate(text.splitlines(), start=1):
            if depth > 0 or in_string:
                change, in_string = _depth_change(raw, in_string)
                depth += change
                continue
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                parts, _ = _read_key(line, 2)
                key = tuple(parts)
                index = counts.get(key, 0)
                counts[key] = index + 1
                table = self._resolve(key) + (index,)
                self.lines.setdefault(table, number)
                self.lines.setdefault(table[:-1], number)
                continue
            if line.startswith("["):
                parts, _ = _read_key(line, 1)
                table = self._resolve(tuple(parts))
                self.lines.setdefault(table, number)
                continue
            parts, pos = _read_key(line, 0)
            if parts and pos < len(line) and line[pos] == "=":
                self.lines.setdefault(table + tuple(parts), number)
                change, in_string = _depth_change(line[pos + 1:], None)
                depth = max(change, 0)

    def _resolve(self, key: tuple) -> tuple:
        """A header path with the indices of any array of tables it passes through.

        ``[[a.allow]]`` inside ``[[a]]`` belongs to the latest element of ``a``.
        """
        resolved: tuple = ()
        for part in key:
            resolved += (part,)
            latest = max((p[-1] for p in self.lines
                          if len(p) == len(resolved) + 1 and p[:-1] == resolved and isinstance(p[-1], int)),
                         default=None)
            if latest is not None and resolved != key:
                resolved += (latest,)
        return resolved

    def line(self, path: tuple) -> int | None:
        """The line of ``path``, or of its nearest enclosing path that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None
