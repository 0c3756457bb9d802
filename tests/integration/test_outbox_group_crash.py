"""Group commit survives SIGKILL: every event a thread was told was stored is in the outbox file, once.

A process emits in durable mode from 8 threads at once (so their rows share
transactions), printing each event id only after its ``emit`` returned, and
is killed with SIGKILL mid-stream. The file then holds every event it was
told about, each once and decodable, and nothing half-written.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

from ledger.wire.codec import default_codec

SCRIPT = textwrap.dedent("""
    import sys, threading
    from ledger.config import Settings
    from ledger.produce.producer import AuditProducer
    from ledger.dev.simulate import simulate

    producer = AuditProducer(Settings.load(), durable=sys.argv[1])
    events = [e for e in simulate(seed=3, events=4000, subjects=50).events]
    said = threading.Lock()

    def emit(part):
        for event in events[part::8]:
            producer.emit(event)
            with said:
                print(event["event_id"], flush=True)  # the caller was told: stored

    threads = [threading.Thread(target=emit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("done", flush=True)
    import time
    time.sleep(600)
""")


def test_events_told_stored_by_concurrent_threads_survive_sigkill_once_each(tmp_path):
    outbox = tmp_path / "outbox.db"
    script = tmp_path / "emit.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    proc = subprocess.Popen([sys.executable, str(script), str(outbox)], env=env, stdout=subprocess.PIPE, text=True)
    told = []
    try:
        for line in proc.stdout:
            if line.strip() == "done" or len(told) >= 1500:
                break
            told.append(line.strip())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert told

    conn = sqlite3.connect(outbox)
    rows = conn.execute("SELECT event_id, value, created_at FROM outbox ORDER BY id").fetchall()
    conn.close()
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored))  # nothing twice
    assert set(told) <= set(stored)  # everything told is there
    codec = default_codec()
    assert all(codec.decode(value)["event_id"] == event_id for event_id, value, _ in rows)  # whole rows only
