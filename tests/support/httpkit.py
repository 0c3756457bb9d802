"""A real `ledger serve` process on a loopback port, for the HTTP tests.

    server = start_server(db_path, tmp_path)          # keys made, process started, /healthz answered
    server.token("audit:read", holder="emp-audit")     # a signed token
    httpx.get(server.url + "/v1/heads", headers=server.auth(token))
    server.stop()                                      # SIGTERM, then SIGKILL after 15 s

``hostile_events()`` are events whose free-text fields (and one customer id)
carry markup, quotes and control characters, for the escaping tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from processes import stop_process

from ledger.http.tokens import issue_token, write_keypair

HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'\"=HYPERLINK(\"x\")\x01\x07"
HOSTILE_ID = "cust-\"><img src=x onerror=alert(3)>"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    key: Path
    public: Path
    revoked: Path
    outbox: Path
    db: Path
    proc: subprocess.Popen
    log: Path
    _tokens: dict = field(default_factory=dict)

    def token(self, scope: str, holder: str | None = None, **kw) -> str:
        if holder is None and not scope.startswith("subject:"):
            holder = "emp-audit-1"
        return issue_token(self.key, scope=scope, holder=holder, **kw)

    @staticmethod
    def auth(token: str | None, justification: str | None = "test: quarterly review") -> dict:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if justification is not None:
            headers["X-Justification"] = justification
        return headers

    def stop(self) -> None:
        stop_process(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_server(db: str | Path, tmp_path: Path, *, bootstrap: str | None = "127.0.0.1:1", topic_prefix: str = "ledger.",
                 extra: tuple[str, ...] = (), attempts: int = 3) -> Server:
    """Start `ledger serve` on a free loopback port; the default bootstrap is unreachable (reads stay in
    the durable outbox, which is all the server needs to answer). ``bootstrap=None`` gives the server
    no Kafka settings at all (no LEDGER_BOOTSTRAP_SERVERS), as when Kafka is not configured.

    Tried up to ``attempts`` times: the free port can be taken by another process between the probe
    and the server's bind, and a loaded machine can make a start slow.
    """
    for attempt in range(attempts):
        try:
            return _start_once(db, tmp_path / f"try{attempt}" if attempt else tmp_path, bootstrap, topic_prefix, extra)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_once(db, tmp_path: Path, bootstrap: str | None, topic_prefix: str, extra: tuple[str, ...]) -> Server:
    tmp_path.mkdir(parents=True, exist_ok=True)
    key, public = write_keypair(tmp_path / "api.key")
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("")
    outbox = tmp_path / "reads-outbox.db"
    log = tmp_path / "server.log"
    port = free_port()
    env = dict(os.environ, LEDGER_BOOTSTRAP_SERVERS=bootstrap, LEDGER_TOPIC_PREFIX=topic_prefix,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if bootstrap is None:
        del env["LEDGER_BOOTSTRAP_SERVERS"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "ledger", "serve", "--db", str(db), "--listen",
                                 f"127.0.0.1:{port}", "--token-key", str(public), "--revoked", str(revoked),
                                 "--outbox", str(outbox), *extra], stdout=fh, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", key, public, revoked, outbox, Path(db), proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ledger serve exited with {proc.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"ledger serve did not answer within 60 s:\n{server.log_text()}")


def hostile_events(base: datetime | None = None) -> list[dict]:
    """Events whose free text (and one customer id) is markup, quotes, formula starts and control characters."""
    t = base or datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)
    actor = {"id": "emp-hostile", "type": "EMPLOYEE", "role": HOSTILE, "organization": HOSTILE}
    common = dict(source_service="crm<script>", subject_ids=[HOSTILE_ID, "cust-victim"], correlation_id=None,
                  trace_id=None, recorded_by=None, attributes={"note": HOSTILE})
    return [
        {"type": "DataAccessed", "occurred_at": t, "actor": actor, **common,
         "data_categories": ["user.contact.email"], "purpose": "essential.service.support", "legal_basis": None,
         "justification": {"reason_code": "x" + HOSTILE, "ticket": HOSTILE, "note": HOSTILE},
         "access_type": "VIEW", "outcome": "GRANTED", "channel": HOSTILE, "record_count": None},
        {"type": "DataShared", "occurred_at": t + timedelta(minutes=5), "actor": actor, **common,
         "data_categories": ["user.contact.address"], "purpose": "marketing.advertising", "legal_basis": "CONSENT",
         "justification": None,
         "recipient": {"id": "rcpt-hostile", "name": "=cmd|' /C calc'!A0 " + HOSTILE, "kind": "ADVERTISER",
                       "country": "US", "address": "@SUM(1+1) " + HOSTILE},
         "transfer_safeguard": "+" + HOSTILE, "agreement_ref": None, "consent_ref": None, "retention_until": None},
    ]
