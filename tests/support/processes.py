"""Stopping the real server processes the tests start (``ledger serve``, ``ledger witness serve``)."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM, so the server shuts down as in production; SIGKILL if it has not exited after ``grace`` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
