"""A real `ledger witness serve` process on a loopback port, and raw add-checkpoint requests.

    witness = start_witness(tmp_path)                       # fixed witness key, trusts tlog_fixtures.LOG_KEY
    log = SyntheticLog("ledger.example.com/audit/t/0")
    status, ctype, body = post(witness.url + "/add-checkpoint", log.request(0, 10))
    witness.stop()

The requests are written from tlog-witness.md by hand (``old <size>``, proof lines, an empty line,
the signed checkpoint), never through the project's own client.
"""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import tlog_fixtures as fx
from httpkit import ROOT, free_port
from processes import stop_process

from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint


def write_key_files(signer, out: Path, stem: str) -> tuple[Path, Path]:
    """``stem.key`` (0600) and ``stem.vkey`` for a fixed test signer."""
    out.mkdir(parents=True, exist_ok=True)
    key, vkey = out / f"{stem}.key", out / f"{stem}.vkey"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.skey + "\n")
    vkey.write_text(signer.verifier().vkey + "\n")
    return key, vkey


@dataclass
class WitnessProcess:
    url: str
    state: Path
    log: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        stop_process(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_witness(tmp_path: Path, *, witness_key=fx.WITNESS_KEY, log_keys=(fx.LOG_KEY,), more_keys=(),
                  extra: tuple[str, ...] = (), attempts: int = 3, context=None) -> WitnessProcess:
    """Start `ledger witness serve` on a free loopback port and wait for /healthz (retried on a port race).

    ``context``: an SSL context trusting the server's certificate, when ``extra`` has --certfile.
    """
    keys = tmp_path / "witness-keys"
    key, _ = write_key_files(witness_key, keys, "witness")
    vkeys = []
    for n, more in enumerate(more_keys):  # further witness keys, as during a rotation
        vkeys += ["--key", str(write_key_files(more, keys, f"witness{n + 2}")[0])]
    for n, log_key in enumerate(log_keys):
        vkeys += ["--log-vkey", str(write_key_files(log_key, keys, f"log{n}")[1])]
    for attempt in range(attempts):
        port = free_port()
        log = tmp_path / f"witness{attempt}.log"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "ledger", "witness", "serve", "--key", str(key), *vkeys,
                                     "--state", str(tmp_path / "witness-state.db"), "--listen",
                                     f"127.0.0.1:{port}", *extra], stdout=fh, stderr=subprocess.STDOUT, env=env)
        scheme = "https" if context is not None else "http"
        witness = WitnessProcess(f"{scheme}://127.0.0.1:{port}", tmp_path / "witness-state.db", log, proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if get(witness.url + "/healthz", context=context)[0] == 200:
                    return witness
            except OSError:
                time.sleep(0.1)
        witness.stop()
    raise RuntimeError(f"ledger witness serve did not start:\n{witness.log_text()}")


def _request(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 30, context=None) -> tuple[int, str, bytes, http.client.HTTPResponse]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read(), response
    finally:
        conn.close()


def post(url: str, body: bytes, headers: dict | None = None, context=None) -> tuple[int, str, bytes]:
    """A raw POST: (status, Content-Type, body)."""
    return _request("POST", url, body, headers, context=context)[:3]


def get(url: str, context=None) -> tuple[int, str, bytes]:
    return _request("GET", url, timeout=2, context=context)[:3]


def self_signed_certificate(out: Path) -> tuple[Path, Path]:
    """cert.pem and key.pem for 127.0.0.1, valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SyntheticLog:
    """A log of made-up leaves that signs checkpoints of any size it has, and writes requests by hand."""

    def __init__(self, origin: str, n: int = 300, salt: bytes = b""):
        self.origin = origin
        leaves = [merkle.leaf_hash(salt + origin.encode() + i.to_bytes(4, "big")) for i in range(n)]
        store = merkle.MemoryHashStore()
        tree = merkle.MerkleTree(store)
        tree.extend(leaves)
        tree.flush()
        self.reader = merkle.TreeReader(store)

    def checkpoint(self, size: int, key=fx.LOG_KEY, root: bytes | None = None) -> str:
        return Checkpoint(self.origin, size, self.reader.root(size) if root is None else root).sign([key])

    def request(self, old: int, size: int, proof=None, **kwargs) -> bytes:
        if proof is None:
            proof = self.reader.consistency_proof(old, size) if 0 < old < size else []
        lines = [f"old {old}"] + [base64.b64encode(h).decode() for h in proof]
        return ("\n".join(lines) + "\n\n" + self.checkpoint(size, **kwargs)).encode()
