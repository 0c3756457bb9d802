"""Asking a witness to cosign: the client side of c2sp.org/tlog-witness ``add-checkpoint``.

    client = WitnessClient("https://witness.example.org/w1", witness_verifiers)
    cosigned = client.cosign(signed_note, size, old_size, proof, proof_from)  # [Verified] cosignatures

:meth:`WitnessClient.cosign` sends the checkpoint with a consistency proof from ``old_size``
(what the witness is believed to hold: the size this log key signed before, 0 for a first one).
On a 409 it resends with a proof from the size the witness reports, asking ``proof_from(size)``
for it; a reported size above the log's own tree is not retried but raised as
:class:`WitnessAlarm`: the witness has seen a larger tree of this origin than the log holds.
The answer's cosignatures are verified with the witness keys the caller trusts; cosignatures by
unknown keys are ignored, as the spec requires, and an answer with none by a trusted key is an
error. One keep-alive connection per witness (stdlib ``http.client``), no store, no Kafka.

Errors, all :class:`WitnessError` (a :class:`~.errors.TlogError`) naming the witness URL:

    WitnessError
    ├── WitnessUnreachable   no connection, timeout, TLS failure (retrying later can help)
    ├── WitnessRefused       400/403/404/422: the witness's reason; 422 may mean a fork
    ├── WitnessAlarm         the witness holds a larger tree than the log, or refuses as inconsistent
    └── WitnessAnswerError   an answer outside the protocol (status, content type, body, cosignature)
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Sequence

from .checkpoint import parse_size
from .errors import FormatError, SignatureError, TlogError
from .note import COSIGNATURE_V1, Verified, Verifier, parse_note, verified_signatures
from .witness import add_checkpoint_body

MAX_ANSWER_BYTES = 64 * 1024
MAX_CONFLICTS = 3  # 409s in a row before giving up (another log process moving the witness too)
DEFAULT_TIMEOUT = 10.0
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class WitnessError(TlogError):
    """A witness did not cosign; ``url`` names it."""

    retriable = False

    def __init__(self, url: str, message: str):
        self.url = url
        super().__init__(f"witness {url}: {message}")


class WitnessUnreachable(WitnessError):
    """No answer: connection refused, timeout, DNS or TLS failure."""

    retriable = True


class WitnessRefused(WitnessError):
    """The witness answered 400, 403, 404 or 422 (``status``) and said why."""

    def __init__(self, url: str, status: int, message: str):
        self.status = status
        super().__init__(url, message)


class WitnessAlarm(WitnessError):
    """The witness's view contradicts the log's: a larger tree, or no consistency with its own."""


class WitnessAnswerError(WitnessError):
    """The witness answered outside the protocol (garbage, a cosignature that does not verify)."""


def check_witness_url(url: str) -> str:
    """The submission prefix without a trailing '/'; ValueError naming what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"witness URL {url!r}: write http(s)://HOST[:PORT][/PREFIX]")
    if parts.query or parts.fragment:
        raise ValueError(f"witness URL {url!r}: no query or fragment (the submission prefix only)")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"witness URL {url!r}: the port is not a number") from None
    return url.rstrip("/")


class WitnessClient:
    """One witness: its submission prefix, the witness keys trusted, one keep-alive connection."""

    def __init__(self, url: str, witness_verifiers: Sequence[Verifier], *, timeout: float = DEFAULT_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None):
        self.url = check_witness_url(url)
        self.verifiers = list(witness_verifiers)
        if not self.verifiers or any(v.sig_type != COSIGNATURE_V1 for v in self.verifiers):
            raise ValueError("a witness client needs the witnesses' verifier keys, each of type 04")
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._parts = urllib.parse.urlsplit(self.url)
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the protocol ---------------------------------------------------------------------------

    def cosign(self, signed_note: str, size: int, old_size: int, proof: Sequence[bytes],
               proof_from: Callable[[int], Sequence[bytes]]) -> list[Verified]:
        """The verified cosignatures of ``signed_note`` (a checkpoint of ``size``), following 409s."""
        for _ in range(MAX_CONFLICTS + 1):
            status, content_type, body = self._post(add_checkpoint_body(old_size, proof, signed_note))
            if status == 200:
                return self._cosignatures(signed_note, body)
            if status == 409:
                held = self._conflict_size(content_type, body)
                if held > size:
                    raise WitnessAlarm(self.url, f"it has cosigned a tree of {held} leaves for this origin but "
                                                 f"the log's tree has {size}: the witness saw a larger tree than "
                                                 "this log holds (a ledger restored from an old copy, or "
                                                 "another signer using this key). Not retrying; investigate")
                if held == old_size:
                    raise WitnessAnswerError(self.url, f"409 naming size {held}, the old size that was sent")
                old_size = held
                proof = list(proof_from(held)) if 0 < held < size else []
                continue
            reason = _printable(body[:500].decode("utf-8", "replace").strip()) or "(no reason given)"
            if status == 422:
                raise WitnessAlarm(self.url, f"422: it refuses the checkpoint as inconsistent with what it "
                                             f"cosigned before (old size {old_size}): {reason}. The log may "
                                             "have forked; investigate before anything else")
            if status in (400, 403, 404):
                hint = {403: " (is the witness configured with this log's vkey?)",
                        404: " (is the witness configured with this origin, or the log key named after "
                             "its prefix?)"}.get(status, "")
                raise WitnessRefused(self.url, status, f"{status}: {reason}{hint}")
            raise WitnessAnswerError(self.url, f"unexpected status {status}: {reason[:200]}")
        raise WitnessAnswerError(self.url, f"{MAX_CONFLICTS + 1} answers of 409 in a row: the witness's size "
                                           "keeps moving (another process submitting for this origin?)")

    def _conflict_size(self, content_type: str, body: bytes) -> int:
        if content_type.split(";")[0].strip().lower() != SIZE_CONTENT_TYPE:
            raise WitnessAnswerError(self.url, f"409 with Content-Type {content_type or 'none'!r}, "
                                               f"not {SIZE_CONTENT_TYPE}")
        try:
            text = body.decode("ascii")
            if not text.endswith("\n"):
                raise FormatError("409 body", "does not end with a newline")
            return parse_size(text[:-1], "409 body")
        except (UnicodeDecodeError, FormatError) as err:
            raise WitnessAnswerError(self.url, f"409 body {body[:40]!r} is not a tree size and a newline "
                                               f"({err})") from None

    def _cosignatures(self, signed_note: str, body: bytes) -> list[Verified]:
        """Verified cosignatures by trusted witness keys; unknown keys' lines are dropped."""
        if not body.strip():
            raise WitnessAnswerError(self.url, "200 with an empty body: no cosignature")
        try:
            text = parse_note(signed_note).text
            answer = body.decode("utf-8")
            if answer.startswith("\n") or "\n\n" in answer:
                raise FormatError("200 body", "has an empty line: signature lines only")
            # The answer's line N is the note's line (text lines + 1 + N): number from the answer's first.
            note = parse_note(text + "\n" + answer, first_line=-text.count("\n"))
        except UnicodeDecodeError:
            raise WitnessAnswerError(self.url, "200 body is not UTF-8") from None
        except FormatError as err:
            raise WitnessAnswerError(self.url, f"200 body is not note signature lines: {err}") from None
        try:
            verified = verified_signatures(note, self.verifiers)
        except SignatureError as err:
            raise WitnessAnswerError(self.url, f"cosignature in its answer {err}") from None
        if not verified:
            signed = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
            known = ", ".join(f"{v.name}+{v.key_id:08x}" for v in self.verifiers)
            raise WitnessAnswerError(self.url, f"no cosignature by a trusted witness key (it signed as {signed}; "
                                               f"--witness-vkey keys: {known})")
        for v in verified:
            if not v.timestamp:
                raise WitnessAnswerError(self.url, f"cosignature by {v.verifier.name} has timestamp 0")
        return verified

    # --- HTTP -----------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            host, port = self._parts.hostname, self._parts.port
            if self._parts.scheme == "https":
                context = self.ssl_context or ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
            else:
                self._conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            self._conn.connect()
            # http.client sends the headers and the body in two writes: without this, Nagle's algorithm
            # holds the body until the witness acknowledges the headers.
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._conn

    def _post(self, body: bytes) -> tuple[int, str, bytes]:
        path = (self._parts.path.rstrip("/") or "") + "/add-checkpoint"
        headers = {"Content-Type": "text/plain; charset=utf-8", "User-Agent": "ledger-witness-client"}
        for attempt in (1, 2):  # a kept-alive connection the witness closed meanwhile: reconnect once
            try:
                conn = self._connection()
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(MAX_ANSWER_BYTES + 1)
                if len(data) > MAX_ANSWER_BYTES:
                    self.close()
                    raise WitnessAnswerError(self.url, f"answer above {MAX_ANSWER_BYTES} bytes")
                if response.will_close:
                    self.close()
                return response.status, response.getheader("Content-Type", ""), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as err:
                self.close()
                if attempt == 2:
                    raise WitnessUnreachable(self.url, f"closed the connection ({err or type(err).__name__})") \
                        from None
            except ssl.SSLError as err:
                self.close()
                raise WitnessUnreachable(self.url, f"TLS failed: {err.reason or err}") from None
            except http.client.HTTPException as err:
                self.close()
                raise WitnessAnswerError(self.url, f"not an HTTP answer ({type(err).__name__}: {err})") from None
            except OSError as err:
                self.close()
                reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err)
                                                                            or type(err).__name__)
                raise WitnessUnreachable(self.url, f"unreachable ({reason})") from None
        raise AssertionError("unreachable")


def _printable(text: str) -> str:
    """A witness's reason as one line without control characters (it goes to the operator's terminal)."""
    return "".join(c if c.isprintable() else " " for c in text)
