"""Opaque page cursors, bound to the token and the query that made them.

A cursor names where the previous page stopped (the last row's
``(occurred_at, event_id)``, the list order of every query) and the
``as_of`` the first page pinned, so later pages read the same recorded
state however much the ledger grew meanwhile: never an offset into a
growing table. It is signed with HMAC-SHA256 under a secret made when the
process starts, over the token's ``jti`` and holder, the route and the
canonical query: a cursor replayed with another token, another query, or
after a restart is refused (400, field ``cursor``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from .problems import ApiError

MAX_CURSOR_CHARS = 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def binding(jti: str, holder_id: str, route: str, query: list[tuple[str, str]]) -> bytes:
    """What a cursor is bound to, as unambiguous bytes (JSON of the parts)."""
    return json.dumps([jti, holder_id, route, sorted(query)], separators=(",", ":")).encode()


class CursorSigner:
    """Makes and checks cursors with a per-process secret."""

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)

    def _mac(self, bound: bytes, payload: bytes) -> str:
        return _b64(hmac.new(self._secret, bound + b"\n" + payload, hashlib.sha256).digest())

    def make(self, bound: bytes, state: dict) -> str:
        payload = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{self._mac(bound, payload)}"

    def read(self, bound: bytes, cursor: str) -> dict:
        refused = ApiError(400, "invalid_cursor", "this cursor was not made for this token and query, or the "
                           "server restarted since; ask for the first page again", "cursor")
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise refused
        body, mac = cursor.split(".")
        try:
            payload = _unb64(body)
        except (ValueError, TypeError):
            raise refused from None
        if not hmac.compare_digest(mac, self._mac(bound, payload)):
            raise refused
        return json.loads(payload)
