"""A producer process for the fault suite: durable mode, one line per event whose call returned.

    python producer_proc.py OUTBOX SEED EVENTS SUBJECTS

Emits ``simulate(seed, events, subjects)`` through ``AuditProducer(durable=OUTBOX)``
and prints each event id, flushed, right after ``emit`` returned: what it
printed is what it was told was recorded. Prints ``done`` at the end, then
waits to be killed with its relay still running.
"""

import sys
import time

from ledger.config import Settings
from ledger.dev.simulate import simulate
from ledger.produce.producer import AuditProducer

outbox, seed, count, subjects = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
producer = AuditProducer(Settings.load(), durable=outbox)
for event in simulate(seed=seed, events=count, subjects=subjects).events:
    producer.emit(event)
    print(event["event_id"], flush=True)
print("done", flush=True)
time.sleep(600)
