"""The ledger's disk fills up during a batch: the writer stops cleanly and resumes once space returns.

The ledger lives on a small tmpfs mounted for the test (we run as root; file
permissions would not stop root, and ``PRAGMA max_page_count`` is per
connection). Skipped where mounting is not permitted.
"""

from __future__ import annotations

import subprocess

import pytest
from faultcheck import Expected, check
from faultkit import WriterProcess, catch_up, record, scale
from traffic import emit_acknowledged

from ledger.dev.simulate import simulate


class SmallDisk:
    """A tmpfs mounted at ``path``; ``resize(mib)`` grows it in place."""

    def __init__(self, path):
        self.path = path

    def resize(self, mib: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={mib}m", str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the disk-full scenario needs root")
    try:
        yield SmallDisk(mount_point)
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_disk_full_stops_the_writer_cleanly_and_it_resumes_without_loss(settings, small_disk):
    """Each time the ledger's file system fills, the writer exits non-zero naming the full disk; after growing it, nothing is lost or repeated."""
    events = scale(6_000, 40_000)
    sizes = scale([12, 1024], [16, 32, 64, 128, 1024])  # MiB after each stop; ~2.7 KB of ledger per event
    settings = settings.with_(db=str(small_disk.path / "ledger.db"))
    told = emit_acknowledged(settings, simulate(seed=81, events=events, subjects=scale(200, 1_500)).events)

    stops, messages = 0, []
    for size in sizes:
        writer = WriterProcess(settings, until_idle=True).start()
        status = writer.wait(timeout=300)
        err = writer.stderr()
        writer.close()
        if status == 0:
            break
        stops += 1
        messages.append(_said(err, small_disk.path))
        assert "Traceback" not in err, err
        # Stopped cleanly: what it wrote is intact and nothing is repeated.
        check(settings, Expected(told=set(told)), so_far=True).assert_ok()
        # A restart while the disk is still full stops the same clean way.
        again = WriterProcess(settings, until_idle=True).start()
        again_status, again_err = again.wait(timeout=300), again.stderr()
        again.close()
        assert again_status != 0 and "Traceback" not in again_err, again_err
        messages.append(_said(again_err, small_disk.path))
        small_disk.resize(size)
    catch_up(settings)

    outcome = check(settings, Expected(told=set(told)))
    record("ledger disk full (tmpfs)", f"{stops} disk-full stops (+{stops} restarts while still full)", outcome,
           f"writer said: {messages[0]}" if messages else "")
    outcome.assert_ok()
    assert stops >= 1
    unclear = [m for m in messages if "disk is full" not in m.lower()]
    assert not unclear, unclear


def _said(stderr: str, disk) -> str:
    """The writer's last stderr line, without the temporary path."""
    lines = stderr.strip().splitlines() or [""]
    return lines[-1].replace(str(disk), "DISK")
