"""``ledger serve``: the configuration and the uvicorn process.

The server opens the ledger read-only, gets the tokens' public key only,
and records every answered read through a durable outbox (default: beside
the ledger, ``LEDGER.reads-outbox.db``; it needs a writable directory, the
ledger file does not).

``--workers N`` runs N uvicorn processes, each with its own SO_REUSEPORT
socket on the one port so that the kernel spreads the connections
(workers.py; uvicorn's shared socket where the platform lacks it). Each builds the same
application from the configuration the parent checked (passed in the
environment variable :data:`WORKER_ENV`, with one cursor secret for all, so
a page cursor made by one worker is read by any); they share the outbox
file: each writes its reads there (SQLite's lock between processes, group
commit within one), one relays it to Kafka at a time and another takes over
when it exits (``ledger.produce.outbox``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError


@dataclass(frozen=True)
class ServeConfig:
    settings: Settings
    host: str
    port: int
    token_key: str
    revoked: str | None = None
    jwks: str | None = None
    jwks_issuer: str | None = None
    audience: str | None = None
    outbox: str | None = None
    source_service: str = "ledger-api"
    certfile: str | None = None
    keyfile: str | None = None
    request_seconds: float = 10.0
    log_vkeys: tuple[str, ...] = ()  # paths of the log's verifier key files (--log-vkey)
    witness_vkeys: tuple[str, ...] = ()  # paths of witnesses' verifier key files (--witness-vkey)
    report_key: str | None = None  # path of the report key that signs subject reports (--report-key)
    kafka_configured: bool = False  # --bootstrap-servers or LEDGER_BOOTSTRAP_SERVERS given: /readyz measures lag
    workers: int = 1
    threads: int = 8
    server_timing: bool = False

    @classmethod
    def from_args(cls, args, settings: Settings) -> ServeConfig:
        host, sep, port = args.listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"--listen {args.listen!r}: write HOST:PORT, e.g. 127.0.0.1:8080")
        if not 0 < args.request_timeout <= 600:
            raise ConfigError("--request-timeout: give seconds from more than 0 to 600")
        if not 1 <= args.workers <= MAX_WORKERS:
            raise ConfigError(f"--workers: give a number of processes from 1 to {MAX_WORKERS}")
        if not 1 <= args.threads <= MAX_THREADS:
            raise ConfigError(f"--threads: give a number of threads from 1 to {MAX_THREADS}")
        return cls(settings=settings, host=host.strip("[]") or "127.0.0.1", port=int(port), token_key=args.token_key,
                   revoked=args.revoked, jwks=args.jwks, jwks_issuer=args.jwks_issuer, audience=args.audience,
                   outbox=args.outbox, source_service=args.source_service, certfile=args.certfile,
                   keyfile=args.keyfile, request_seconds=args.request_timeout, workers=args.workers,
                   threads=args.threads, server_timing=args.server_timing,
                   log_vkeys=tuple(getattr(args, "log_vkey", None) or ()),
                   witness_vkeys=tuple(getattr(args, "witness_vkey", None) or ()),
                   report_key=getattr(args, "report_key", None),
                   kafka_configured=bool(getattr(args, "bootstrap_servers", None)
                                         or os.environ.get("LEDGER_BOOTSTRAP_SERVERS", "").strip()))

    def outbox_path(self) -> Path:
        return Path(self.outbox) if self.outbox else Path(f"{self.settings.db}.reads-outbox.db")

    def to_json(self) -> str:
        """This configuration as JSON (settings included), for the worker processes."""
        return json.dumps({**asdict(self), "settings": asdict(self.settings)})

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        values = json.loads(text)
        settings = values.pop("settings")
        security = settings.pop("security", {}) or {}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}  # JSON has no tuples
        return cls(settings=Settings.load(env={}, **settings, **security), **values)


MAX_WORKERS = 16
MAX_THREADS = 64
#: How the parent hands its checked configuration and the shared cursor secret to uvicorn's worker processes.
WORKER_ENV = "LEDGER_SERVE_WORKER"


def build(config: ServeConfig, cursor_secret: bytes | None = None):
    """The application and its recorder (close the recorder when the server stops)."""
    from ..store import Ledger
    from .app import ServerState, create_app
    from .cursor import CursorSigner
    from .readiness import KafkaLag
    from .recording import RECORD_WAIT_SECONDS, ReadRecorder
    from .tokens import AUDIENCE, TokenVerifier

    verifier = TokenVerifier.from_files(config.token_key, revoked=config.revoked, jwks=config.jwks,
                                        jwks_issuer=config.jwks_issuer, audience=config.audience or AUDIENCE)
    Ledger.open(config.settings.db, readonly=True).close()  # refuse to start on a missing or foreign file
    # Key files are checked before the outbox is made: a refused start leaves nothing behind.
    log_vkeys = load_log_vkeys(config.log_vkeys, config.settings.log_origin)
    witness_vkeys = load_witness_vkeys(config.witness_vkeys)
    report_signer = load_report_signer(config.report_key, config.settings.log_origin)
    recorder = ReadRecorder(config.outbox_path(), config.settings, source_service=config.source_service,
                            write_timeout=min(RECORD_WAIT_SECONDS, config.request_seconds / 4))
    state = ServerState(Path(config.settings.db), verifier, recorder, secure_cookies=bool(config.certfile),
                        request_seconds=config.request_seconds, log_origin=config.settings.log_origin,
                        log_vkeys=log_vkeys, witness_vkeys=witness_vkeys, report_signer=report_signer,
                        kafka_lag=KafkaLag(config.settings) if config.kafka_configured else None,
                        threads=config.threads,
                        server_timing=config.server_timing,
                        signer=CursorSigner(cursor_secret))
    return create_app(state), recorder


def load_log_vkeys(paths, log_origin: str) -> tuple:
    """The log's verifier keys from ``--log-vkey`` files; ConfigError naming the file and the problem."""
    from ..tlog.checkpoint import key_covers
    from ..tlog.errors import TlogError
    from ..tlog.keyfile import load_verifier
    from ..tlog.note import ED25519

    keys = []
    for path in paths:
        try:
            v = load_verifier(path)
        except (TlogError, OSError) as err:
            raise ConfigError(f"--log-vkey {path}: {err}") from err
        if v.sig_type != ED25519:
            raise ConfigError(f"--log-vkey {path}: signature type {v.sig_type:02x} is a witness key; the log's "
                              "key has type 01 (`ledger keys generate NAME --out DIR` without --cosigner)")
        if not key_covers(v.name, log_origin + "/x"):
            raise ConfigError(f"--log-vkey {path}: the key is named {v.name!r}, which does not cover the log "
                              f"origin {log_origin!r} (LEDGER_LOG_ORIGIN or --log-origin)")
        keys.append(v)
    return tuple(keys)


def load_witness_vkeys(paths) -> tuple:
    """Witnesses' verifier keys from ``--witness-vkey`` files; ConfigError naming the file when one is not a
    witness's key (signature type 04, c2sp.org/tlog-cosignature)."""
    from ..tlog.errors import TlogError
    from ..tlog.keyfile import load_verifier
    from ..tlog.note import COSIGNATURE_V1

    keys = []
    for path in paths:
        try:
            v = load_verifier(path)
        except (TlogError, OSError) as err:
            raise ConfigError(f"--witness-vkey {path}: {err}") from err
        if v.sig_type != COSIGNATURE_V1:
            raise ConfigError(f"--witness-vkey {path}: signature type {v.sig_type:02x} is not a witness's key; a "
                              f"witness's vkey has type {COSIGNATURE_V1:02x} (`ledger keys generate NAME --out DIR "
                              "--cosigner`); the log's own key goes to --log-vkey")
        keys.append(v)
    return tuple(keys)


def load_report_signer(path: str | None, log_origin: str):
    """The report key of ``--report-key`` (or None); ConfigError naming the file when it is not a report key.

    A report key is an Ed25519 signer (type 01) whose name does not cover the log origin: a key
    named like the log would also verify checkpoints, and one key signs one kind of statement.
    """
    if path is None:
        return None
    from ..audit.report.proofs import check_report_key
    from ..errors import ValidationError
    from ..tlog.errors import TlogError
    from ..tlog.keyfile import load_signer, load_verifier
    from ..tlog.note import ED25519

    try:
        signer = load_signer(path)
    except (TlogError, OSError) as err:
        raise ConfigError(f"--report-key {path}: {err} (make one with `ledger keys generate NAME --out DIR "
                          "--report`)") from err
    try:
        check_report_key(signer, log_origin)
    except ValidationError as err:
        raise ConfigError(f"--report-key {path}: not a report key: {err.reason}") from err
    beside = Path(path).with_suffix(".vkey")  # a witness key (type 04) has the same private form: its vkey tells
    if beside.is_file():
        try:
            kind = load_verifier(beside).sig_type
        except (TlogError, OSError):
            kind = ED25519
        if kind != ED25519:
            raise ConfigError(f"--report-key {path}: not a report key: its verifier key {beside.name} has signature "
                              f"type {kind:02x} (a witness's); make one with `ledger keys generate NAME --out DIR "
                              "--report`")
    return signer


def worker_app():
    """The application of one worker process (``uvicorn --factory``): the parent's configuration, its secret."""
    handed = os.environ.get(WORKER_ENV)
    if not handed:
        raise ConfigError(f"{WORKER_ENV} is not set: worker processes are started by `ledger serve --workers N`")
    parts = json.loads(handed)
    _logging()
    app, recorder = build(ServeConfig.from_json(parts["config"]), bytes.fromhex(parts["cursor_secret"]))
    app.state.ledger_http.on_shutdown.append(recorder.close)
    return app


HTTP_EXTRA = ("fastapi", "uvicorn", "jwt", "jinja2", "cryptography")


def require_http_extra() -> None:
    """ConfigError naming what is missing, instead of an ImportError traceback."""
    import importlib

    missing = []
    for name in HTTP_EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append({"jwt": "pyjwt"}.get(name, name))
    if missing:
        raise ConfigError(f"`ledger serve` needs the 'http' extra ({', '.join(missing)} missing): "
                          "pip install 'ledger[http]'")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The outbox relay retries an unreachable broker for ever; its connection chatter would bury the log.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("ledger.kafka").setLevel(logging.CRITICAL)  # /readyz's lag probe says it in its JSON


def serve(config: ServeConfig) -> int:
    require_http_extra()
    import uvicorn

    _logging()
    # access_log off: uvicorn's access lines carry the query string, and the log is no place for
    # customer ids; each read is in the ledger itself.
    common = {"host": config.host, "port": config.port, "log_level": "info", "access_log": False,
              "ssl_certfile": config.certfile, "ssl_keyfile": config.keyfile, "server_header": False,
              "timeout_graceful_shutdown": 10}
    if config.workers == 1:
        app, recorder = build(config)
        try:
            uvicorn.run(app, **common)
        finally:
            recorder.close()
        return 0
    # Checked here, once, so that a bad key or ledger is one clean error rather than N failing workers.
    _, recorder = build(config)
    recorder.close(timeout=0)
    handed = json.dumps({"config": config.to_json(), "cursor_secret": secrets.token_hex(32)})
    from .workers import reuseport_available, run_workers

    if reuseport_available():
        return run_workers(config.host, config.port, config.workers, common, handed)
    # No SO_REUSEPORT here: uvicorn's supervisor and its one shared socket.
    os.environ[WORKER_ENV] = handed
    try:
        uvicorn.run("ledger.http.server:worker_app", factory=True, workers=config.workers, **common)
    finally:
        os.environ.pop(WORKER_ENV, None)
    return 0
