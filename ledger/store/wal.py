"""WAL checkpoints on a thread of their own, so the writer's commits do not wait for them.

With SQLite's automatic checkpoint, the COMMIT that takes the WAL past its limit
copies the WAL into the main file before it returns: on the writer's thread,
which is the chained, one-at-a-time part of ingest (measured: 13.5% of it, the
checkpoint's writes and reads). Here a second connection runs a PASSIVE
checkpoint after each commit, on a daemon thread, while the writer prepares its
next batch (SQLite releases the GIL while it copies pages).

A PASSIVE checkpoint never waits, so alone it would let the WAL grow without
end: SQLite rewinds the WAL to its start only when a write transaction begins
with every frame copied into the main file. So before a transaction begins,
once the WAL holds ``restart_frames`` pages, the writer waits for the pass after
its last commit; its next commit then writes from the start of the WAL again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from .schema import WAL_CHECKPOINT_PAGES

log = logging.getLogger(__name__)

#: WAL pages before the writer waits for a checkpoint: the bound of the automatic checkpoint it replaces.
RESTART_FRAMES = WAL_CHECKPOINT_PAGES


class WalCheckpointer:
    """Checkpoints ``path``'s WAL after each commit on its own connection and thread.

    The writer calls :meth:`before_begin` before each write transaction and
    :meth:`committed` after each commit. If a checkpoint fails, :attr:`error` is
    set and the thread stops: the owner then goes back to automatic checkpoints.
    """

    def __init__(self, path: Path, restart_frames: int | None = None):
        self.restart_frames = RESTART_FRAMES if restart_frames is None else restart_frames
        self.error: sqlite3.Error | None = None
        # Opened here so that a file which cannot be opened fails the caller; used by the thread alone.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._changed = threading.Condition()
        self._commits = 0  # commits announced by the writer
        self._passed = 0  # commits covered by a finished pass
        self._frames = 0  # WAL pages at the end of the last pass
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint {path.name}", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A transaction committed: checkpoint what it wrote."""
        with self._changed:
            self._commits += 1
            self._changed.notify_all()

    def before_begin(self) -> None:
        """Before a write transaction: once the WAL is long, wait until everything committed is checkpointed."""
        with self._changed:
            if self._frames < self.restart_frames:
                return
            self._changed.wait_for(lambda: self._passed >= self._commits or self.error is not None or self._closing)

    def close(self) -> None:
        """Stop the thread once its current pass ends; the thread closes its connection as it exits."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        # The owner's finalizer may run on this very thread, from a garbage collection it set off.
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _checkpoint(self) -> int:
        """One PASSIVE pass; the WAL pages it found."""
        _busy, frames, _copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames

    def _run(self) -> None:
        # Only this thread touches the connection from here on, closing it included: a
        # sqlite3 connection closed while another thread runs a statement on it crashes.
        try:
            self._checkpoint_until_closed()
        finally:
            self._conn.close()

    def _checkpoint_until_closed(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._commits > self._passed or self._closing)
                if self._closing:
                    return
                target = self._commits
            try:
                frames = self._checkpoint()
            except sqlite3.Error as err:
                log.warning("WAL checkpoints go back to the writer's commits: %s", err)
                with self._changed:
                    self.error = err
                    self._changed.notify_all()
                return
            with self._changed:
                self._passed, self._frames = target, frames
                self._changed.notify_all()
