"""The writer lock: one process appends to a ledger file at a time, whatever path it was opened by.

The lock is an ``flock`` on the ledger file itself (its inode), so a second
``ledger consume`` through a symlink, a hard link, a relative path or a bind
mount is refused like one through the same path. The kernel releases it when
the process dies (a SIGKILLed writer never leaves a stale lock), and a
refusal names the holder's pid, read from ``/proc/locks``.

Why one descriptor per inode, shared and closed last: SQLite holds POSIX
(``fcntl``) locks on the same file, and POSIX drops *all* of a process's locks
on a file when *any* descriptor of it is closed. So this module opens the
ledger file once per process (per inode), counts the :class:`Ledger` objects
using it, and closes the descriptor only when the last of them has closed its
SQLite connection; releasing the writer lock is ``LOCK_UN``, never a close.
``flock`` and POSIX locks do not interact on Linux local file systems (the
ledger, like SQLite in WAL mode, does not support network file systems).
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass, field

from ..errors import LedgerLockedError, StoreError


@dataclass
class _Inode:
    fd: int
    users: set = field(default_factory=set)  # WriterLock objects attached to this inode
    holder: object | None = None  # the WriterLock that holds the flock, if any


_INODES: dict[tuple[int, int], _Inode] = {}
_GUARD = threading.Lock()


class WriterLock:
    """The exclusive writer lock on one ledger file; attach on open, :meth:`close` on close."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        try:
            st = os.stat(self.path)  # follows symlinks: the file itself
        except OSError as err:
            raise StoreError(f"cannot open ledger {self.path}: {err.strerror}") from err
        self._key = (st.st_dev, st.st_ino)
        with _GUARD:
            inode = _INODES.get(self._key)
            if inode is None:
                inode = _INODES[self._key] = _Inode(os.open(self.path, os.O_RDONLY | os.O_CLOEXEC))
            inode.users.add(self)
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> None:
        """Take the lock (no-op if this object holds it); LedgerLockedError if another writer does."""
        if self._held:
            return
        with _GUARD:
            inode = _INODES[self._key]
            if inode.holder is not None:
                raise LedgerLockedError(self._refusal(os.getpid()))
            try:
                fcntl.flock(inode.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise LedgerLockedError(self._refusal(_holder_pid(*self._key))) from err
            inode.holder = self
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        with _GUARD:
            inode = _INODES[self._key]
            fcntl.flock(inode.fd, fcntl.LOCK_UN)
            inode.holder = None
        self._held = False

    def close(self) -> None:
        """Release, and detach from the inode; its descriptor closes with the last user (see module docstring)."""
        self.release()
        with _GUARD:
            inode = _INODES.get(self._key)
            if inode is None or self not in inode.users:
                return
            inode.users.discard(self)
            if not inode.users:
                del _INODES[self._key]
                os.close(inode.fd)

    def _refusal(self, holder: int | None) -> str:
        return (f"{self.path} is locked by another writer{f' (pid {holder})' if holder else ''}; "
                "only one `ledger consume` (or reprocess) may write a ledger file at a time, "
                "whichever path or link it is opened by")


def _holder_pid(dev: int, ino: int, proc_locks: str = "/proc/locks") -> int | None:
    """The pid holding an exclusive flock on the inode, from /proc/locks (Linux), or None."""
    want = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    same_inode = None  # overlay file systems may show another device number
    try:
        with open(proc_locks) as fh:
            for line in fh:
                # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
                fields = line.split()
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE":
                    if fields[5] == want:
                        return int(fields[4])
                    if fields[5].rsplit(":", 1)[-1] == str(ino):
                        same_inode = int(fields[4])
    except (OSError, ValueError):
        return None
    return same_inode
