"""Helpers shared by the fault scenarios: scale, the results table, writer and producer processes.

The writer and the producers run as real processes (``python -m ledger ...``
or ``producer_proc.py``) so that SIGKILL means what it means in production
and every process loads its schemas from its own ``LEDGER_SCHEMAS_DIR``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from faultcheck import Outcome

LONG = os.environ.get("LEDGER_FAULTS", "").strip().lower() == "long"
MODE = "long" if LONG else "short"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TABLE_PATH = REPO / "build" / "faults" / f"table-{MODE}.md"


def scale(short, long):
    """The short figure for ``make test``, the long one for ``make faults``."""
    return long if LONG else short


# -- the results table ------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    events: int
    faults: str
    lost: str
    duplicated: str
    rejected: str
    repeats: str
    verify: str
    outcome: str


ROWS: list[Row] = []
COLUMNS = ("scenario", "events", "faults injected", "lost", "duplicated", "rejected (DLQ offsets)",
           "repeats absorbed", "verify", "outcome")


def record(scenario: str, faults: str, outcome: Outcome, note: str = "", *, lost: str | None = None) -> None:
    """Add one scenario's figures to the table printed at the end of the session."""
    verdict = "pass" if outcome.ok else "FAIL"
    verify = {True: "ok", False: f"FAILED ({len(outcome.verify_problems)})", None: "not run"}[outcome.verify_ok]
    ROWS.append(Row(scenario, outcome.events, faults, str(outcome.lost) if lost is None else lost,
                    str(outcome.duplicated), f"{outcome.rejected} ({outcome.dlq_offsets})", str(outcome.repeats),
                    verify, f"{verdict}{'; ' + note if note else ''}"))


# Table order: the order of faults, whatever order pytest ran them in.
ORDER = ("writer SIGKILL", "broker SIGKILL", "broker unreachable", "producer SIGKILL", "bad records",
         "ledger disk full", "queries", "broker crash on memory")


def table_text() -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    def rank(row) -> int:
        return next((i for i, p in enumerate(ORDER) if row.scenario.startswith(p)), len(ORDER))

    for row in sorted(ROWS, key=rank):
        lines.append("| " + " | ".join(str(v) for v in vars(row).values()) + " |")
    return "\n".join(lines)


# -- processes --------------------------------------------------------------------------

def cli_env(settings, schemas_dir: str | os.PathLike | None = None) -> dict[str, str]:
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client,
           "LEDGER_TOPIC_PREFIX": settings.topic_prefix, "LEDGER_DB": str(settings.db)}
    if schemas_dir is not None:
        env["LEDGER_SCHEMAS_DIR"] = str(schemas_dir)
    return env


def ledger_cli(settings, *args: str, schemas_dir=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``ledger ARGS`` to completion in a fresh process."""
    return subprocess.run([sys.executable, "-m", "ledger", *args], env=cli_env(settings, schemas_dir),
                          capture_output=True, text=True, timeout=timeout)


def catch_up(settings, *, schemas_dir=None, batch_size: int = 1000) -> subprocess.CompletedProcess:
    """``ledger consume --until-idle`` in a fresh process; asserts it exited 0."""
    done = ledger_cli(settings, "consume", "--until-idle", "--quiet", "--batch-size", str(batch_size),
                      schemas_dir=schemas_dir)
    assert done.returncode == 0, done.stderr
    return done


class WriterProcess:
    """``ledger consume`` as a child process, its stderr kept in a temporary file."""

    def __init__(self, settings, *, until_idle: bool = False, batch_size: int = 1000, schemas_dir=None):
        self.command = [sys.executable, "-m", "ledger", "consume", "--quiet", "--batch-size", str(batch_size)]
        if until_idle:
            self.command.append("--until-idle")
        self.env = cli_env(settings, schemas_dir)
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.exits: list[tuple[int, str]] = []  # (status, stderr tail) of every run that ended on its own
        self._err = None

    def start(self) -> "WriterProcess":
        self._err = tempfile.TemporaryFile()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=self._err)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to finish a batch or close anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM: finish the batch, commit, exit."""
        # A process signalled before it installed its handlers dies of the signal: give it time to start.
        time.sleep(max(0.0, self.started + 3.0 - time.monotonic()))
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 300) -> int:
        status = self.proc.wait(timeout=timeout)
        return status

    def supervise(self) -> None:
        """Restart the writer if it exited on its own (as a service manager would), noting why."""
        if self.proc is not None and not self.alive():
            self.exits.append((self.proc.returncode, self.stderr()[-6000:]))
            self.start()

    def exit_note(self) -> str:
        """A table note on the runs that stopped on their own (restarted as a service manager would)."""
        if not self.exits:
            return ""
        last = self.exits[0][1].strip().splitlines()[-1] if self.exits[0][1].strip() else "?"
        return f"writer stopped {len(self.exits)}x on its own and was restarted (e.g. {last[:110]!r})"

    def crashes(self) -> list[str]:
        """Stderr of the runs that ended on their own with a traceback instead of a clean error."""
        return [err for _, err in self.exits if "Traceback" in err]

    def close(self) -> None:
        if self.alive():
            self.kill()
        if self._err is not None:
            self._err.close()


class ProducerProcess:
    """``producer_proc.py``: emits a simulated workload in durable mode, printing each id once its call returned."""

    def __init__(self, settings, outbox: Path, *, seed: int, events: int, subjects: int):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "producer_proc.py"), str(outbox), str(seed), str(events), str(subjects)],
            env=cli_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.told: list[str] = []

    def read_until_killed(self, after_seconds: float) -> list[str]:
        """SIGKILL it ``after_seconds`` in (sooner if it says done); returns the ids it was told were recorded."""
        import threading

        done = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:  # ends when the pipe closes: after the kill
                line = line.strip()
                if line == "done":
                    done.set()
                elif line:
                    self.told.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        done.wait(after_seconds)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        reader.join(timeout=30)
        self.proc.stdout.close()
        errors = self.proc.stderr.read()
        self.proc.stderr.close()
        # Killed, not crashed: a producer that died on its own proves nothing about SIGKILL.
        assert self.proc.returncode == -signal.SIGKILL, errors
        return self.told
