"""A report's chain heads cover exactly the entries it shows, while a writer appends (issue 13, item 5).

build_report used to read events, notice cases and heads in three separate
read snapshots: with a writer committing in between, the heads printed could
cover entries the report does not show. It now reads them in one read
transaction; this test appends batches on a writer thread while reports are
built on a reader, and checks every report against the records it must show.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

from ledger.audit.report import build_report
from ledger.ingest.pipeline import Ingestor
from ledger.store import Ledger
from ledger.wire.codec import default_codec
from tests.support.fill import to_records

SUBJECT = "cust-watched"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
BATCHES, PER_BATCH = 60, 40


def access(n: int) -> dict:
    """A DataAccessed event on SUBJECT; the actor varies so records spread over the three partitions."""
    return {
        "type": "DataAccessed", "event_id": str(uuid.UUID(int=n + 1)), "occurred_at": START + timedelta(seconds=n),
        "source_service": "support-desk", "actor": {"id": f"emp-{n % 7}", "type": "EMPLOYEE"},
        "subject_ids": [SUBJECT, f"cust-{n:05d}"], "data_categories": ["user.contact.email"],
        "purpose": "essential.service.support", "access_type": "VIEW", "outcome": "GRANTED",
    }


def test_report_heads_cover_exactly_the_entries_shown_while_a_writer_appends(tmp_path):
    """Each report shows every entry at or below its heads and none above: heads and events share one snapshot."""
    codec = default_codec()
    path = tmp_path / "ledger.db"
    positions: dict[str, tuple] = {}
    records = list(to_records((access(n) for n in range(BATCHES * PER_BATCH)), codec=codec, positions=positions))
    writer = Ledger.open(path, readonly=False, create=True)
    ingestor = Ingestor(writer, codec=codec)
    ingestor.ingest(records[:PER_BATCH])
    failure: list[BaseException] = []

    def append_the_rest() -> None:
        try:
            for i in range(1, BATCHES):
                ingestor.ingest(records[i * PER_BATCH : (i + 1) * PER_BATCH])
        except BaseException as err:  # reported by the main thread
            failure.append(err)

    thread = threading.Thread(target=append_the_rest)
    reports = 0
    with Ledger.open(path, readonly=True) as reader:
        thread.start()
        try:
            while thread.is_alive() or reports < 3:
                report = build_report(reader, SUBJECT, audience="auditor")
                heads = {(h["topic"], h["partition"]): h["offset"] for h in report.heads}
                shown = {row["event_id"] for row in report.timeline}
                covered = {event_id for event_id, (_, topic, partition, offset) in positions.items()
                           if offset <= heads.get((topic, partition), -1)}
                assert shown == covered, (
                    f"report {reports}: {len(shown - covered)} shown above the heads, "
                    f"{len(covered - shown)} below the heads missing")
                reports += 1
        finally:
            thread.join()
            writer.close()
    assert not failure, failure
    assert reports >= 3
