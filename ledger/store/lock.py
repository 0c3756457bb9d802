"""The writer lock: one process appends to a ledger file at a time.

An ``flock`` on ``<ledger>.lock``, released by the kernel when the process
dies (a SIGKILLed writer never leaves a stale lock). The file holds the
holder's pid, so the refusal can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import LedgerLockedError


class WriterLock:
    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (no-op if this object holds it); LedgerLockedError if another process does."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(fd)
            holder = _read_pid(self.path)
            ledger = self.path.removesuffix(".lock")
            raise LedgerLockedError(
                f"{ledger} is locked by another writer{f' (pid {holder})' if holder else ''}; "
                "only one `ledger consume` (or reprocess) may write a ledger file at a time"
            ) from err
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_pid(lock_path: str) -> str | None:
    try:
        return Path(lock_path).read_text().strip() or None
    except OSError:
        return None
