"""The /v1 routes of the verifiable ledger: checkpoints, the log's verifier keys, receipts, consistency.

Who may read what, and why:

- ``GET /v1/checkpoints``, ``GET /v1/checkpoints/{origin}`` and ``GET /v1/log-vkey`` are public (no
  token): a checkpoint is an origin, a tree size and a root hash signed by the log, a statement
  made to be copied to witnesses, monitors and customers; the vkey is the key that checks it. They
  hold no personal data and are not recorded as reads.
- ``GET /v1/report-vkey`` is public too: the verifier key of the report key (``--report-key``) that signs
  ``/v1/subjects/{id}/report?format=json&signed=true`` (that route is in api.py, a read like any report).
- ``GET /v1/events/{event_id}/receipt`` is ``audit:read`` only. A receipt's ``extra`` is the raw
  record, which may hold other customers' ids and staff details, and its leaf hash commits to them
  without a secret; a subject token gets 404 like on every audit route. It is recorded as a read
  of the event's subjects, like any read.
- ``GET /v1/consistency`` is for staff (``audit:read`` or ``admin``): the proof's hashes can be leaf
  hashes (an odd old size gives one), which a customer could use to confirm guesses of a hidden
  field; a subject token gets 404. Hashes are no customer's data, so it is not recorded.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ledger.errors import LedgerError
from ledger.tlog.keyfile import safe_file_name

from .api import _ERRORS, _bearer, check_params, justification_of, record, request_id, state
from .auth import auditor, principal
from .problems import NO_STORE, ApiError, forbidden, not_found
from .tokens import SCOPE_ADMIN, SCOPE_AUDIT

#: Public answers change as the log grows: caches must ask again each time.
REVALIDATE = {"Cache-Control": "no-cache"}
COMPARE = ("Compare these keys with the log's verifier key published elsewhere (its operator's web site, "
           "a transparency report, a witness): this server also serves the pages that check signatures, "
           "so its word alone proves little.")

REPORT_COMPARE = ("Compare this key with the report key published elsewhere (the company's web site, its privacy "
                  "notice): this server also serves the page that checks a report's signature, so its word alone "
                  "proves little. Check a downloaded report offline with `ledger verify-report FILE --vkey LOG.vkey "
                  "--report-vkey REPORT.vkey`.")
public_router = APIRouter(prefix="/v1", tags=["verifiable ledger (public)"])
router = APIRouter(prefix="/v1", dependencies=[Depends(_bearer)], tags=["verifiable ledger"])


class SignatureInfo(BaseModel):
    name: str
    key_id: str
    kind: str  # "log", "cosignature" or "unknown key"
    verified: bool | None  # None: no key of this name and id was given to the server


class CheckpointInfo(BaseModel):
    origin: str
    size: int
    root: str
    signed_at: str
    log_signature: str  # "verified", "not verified" or "no log vkey configured"
    signatures: list[SignatureInfo]
    note: str
    download: str


class CheckpointsBody(BaseModel):
    items: list[CheckpointInfo]
    log_vkeys: list[str]
    witness_vkeys: list[str]  # the witnesses' keys given to --witness-vkey (their cosignatures are checked)


class VkeyBody(BaseModel):
    log_vkeys: list[str]
    log_origin: str
    compare: str


class ConsistencyBody(BaseModel):
    origin: str
    old_size: int
    size: int
    root: str
    proof: list[str]
    checkpoint: str


def _ms_text(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def describe_checkpoint(cp, vkeys, witness_vkeys=()) -> dict:
    """A stored checkpoint with the status of each signature line as the server's configured keys see it.

    ``vkeys`` are the log's keys (--log-vkey), ``witness_vkeys`` the witnesses' (--witness-vkey): a
    cosignature by a key given to neither is "unknown key", verified None.
    """
    from ledger.tlog.checkpoint import key_covers
    from ledger.tlog.errors import TlogError
    from ledger.tlog.note import COSIGNATURE_V1, b64, parse_note

    by_key = {(v.name, v.key_id): v for v in (*vkeys, *witness_vkeys)}
    note = parse_note(cp.note)
    text = note.text.encode("utf-8")
    sigs, log_ok = [], None
    for sig in note.signatures:
        v = by_key.get((sig.name, sig.key_id))
        verified = None
        if v is not None:
            try:
                v.verify(text, sig.signature)
                verified = True
            except TlogError:
                verified = False
        kind = "unknown key" if v is None else "cosignature" if v.sig_type == COSIGNATURE_V1 else "log"
        if kind == "log" and key_covers(v.name, cp.origin):
            log_ok = bool(log_ok is not False and verified)
        sigs.append({"name": sig.name, "key_id": f"{sig.key_id:08x}", "kind": kind, "verified": verified})
    status = ("no log vkey configured" if not vkeys else
              "verified" if log_ok else "not verified")
    from urllib.parse import quote

    return {"origin": cp.origin, "size": cp.size, "root": b64(cp.root), "signed_at": _ms_text(cp.signed_at_ms),
            "log_signature": status, "signatures": sigs, "note": cp.note,
            "download": "/v1/checkpoints/" + quote(cp.origin, safe="/")}


def checkpoints_of(request: Request) -> list[dict]:
    """Every origin's latest checkpoint, described; a 503 that names no file path when they cannot be read
    (these routes are public)."""
    from ledger.errors import StoreError
    from ledger.store.checkpoints import latest_checkpoints

    s = state(request)
    try:
        stored = latest_checkpoints(s.ledger_path)
    except StoreError:
        raise ApiError(503, "ledger_unavailable", "the ledger's checkpoints cannot be read now (a ledger of an "
                       "older format has none: rebuild it with `ledger replay`)") from None
    return [describe_checkpoint(cp, s.log_vkeys, s.witness_vkeys) for cp in stored]


# -- public ------------------------------------------------------------------------------------------
@public_router.get("/checkpoints", response_model=CheckpointsBody, responses=_ERRORS,
                   summary="the latest signed checkpoint of every origin (public: no personal data)")
def checkpoints_route(request: Request):
    check_params(request, ())
    s = state(request)
    return JSONResponse({"items": checkpoints_of(request), "log_vkeys": [v.vkey for v in s.log_vkeys],
                         "witness_vkeys": [v.vkey for v in s.witness_vkeys]}, headers=REVALIDATE)


@public_router.get("/checkpoints/{origin:path}", responses={**_ERRORS, 200: {
                   "description": "the signed checkpoint note (c2sp.org/tlog-checkpoint), for download",
                   "content": {"text/plain": {}}}},
                   summary="one origin's latest signed checkpoint as a note file (public)")
def checkpoint_note_route(request: Request, origin: str):
    check_params(request, ())
    for cp in checkpoints_of(request):
        if cp["origin"] == origin:
            return Response(cp["note"], media_type="text/plain; charset=utf-8", headers={
                **REVALIDATE, "Content-Disposition": f'attachment; filename="{safe_file_name(origin)}.checkpoint"'})
    raise not_found(f"no checkpoint of origin {origin!r}")


@public_router.get("/log-vkey", response_model=VkeyBody, responses=_ERRORS,
                   summary="the log's verifier key(s), as given to `ledger serve --log-vkey` (public)")
def log_vkey_route(request: Request):
    check_params(request, ())
    s = state(request)
    if not s.log_vkeys:
        raise not_found("this server was started without --log-vkey FILE: ask the operator for the log's vkey")
    return JSONResponse({"log_vkeys": [v.vkey for v in s.log_vkeys], "log_origin": s.log_origin,
                         "compare": COMPARE}, headers=REVALIDATE)


class ReportVkeyBody(BaseModel):
    report_vkey: str
    compare: str


@public_router.get("/report-vkey", response_model=ReportVkeyBody, responses=_ERRORS,
                   summary="the verifier key of the reports this server signs (--report-key; public)")
def report_vkey_route(request: Request):
    check_params(request, ())
    signer = state(request).report_signer
    if signer is None:
        raise not_found("this server signs no reports (started without --report-key FILE): ask the operator")
    return JSONResponse({"report_vkey": signer.verifier().vkey, "compare": REPORT_COMPARE}, headers=REVALIDATE)


# -- staff ---------------------------------------------------------------------------------------------
@router.get("/events/{event_id}/receipt", responses={**_ERRORS, 409: {"description": "not under a checkpoint yet"},
            200: {"description": "the receipt (c2sp.org/tlog-proof@v1)", "content": {"text/plain": {}}}},
            summary="an event's receipt: leaf data, inclusion proof, signed checkpoint (audit:read)")
def receipt_route(request: Request, event_id: str, justification: str | None = Query(None)):
    from ledger.store.checkpoints import NotCheckpointedError, UnknownEventError, prove_event
    from ledger.tlog.receipt import decode_leaf_data, parse_receipt
    from ledger.wire.codec import default_codec

    check_params(request, ("justification",))
    p = auditor(request)
    why = justification_of(request, p)
    s = state(request)
    try:
        text = prove_event(s.ledger_path, event_id, s.log_origin)
    except UnknownEventError:
        raise not_found(f"no event {event_id!r} in the ledger") from None
    except NotCheckpointedError as err:
        raise ApiError(409, "not_checkpointed", f"{err}", "event_id") from None
    try:
        record_ = decode_leaf_data(parse_receipt(text).extra)
        event = default_codec().decode(record_.value) if record_.value is not None else {}
    except LedgerError as err:  # without its customers the read cannot be recorded, so it is not answered
        raise ApiError(503, "recording_failed", f"the entry does not decode ({type(err).__name__}), so this read "
                       "cannot be recorded against its customers; prove it on the ledger host with `ledger prove`") \
            from None
    record(request, p, event.get("subject_ids") or (), event.get("data_categories") or (), justification=why,
           export=True)
    safe = safe_file_name(event_id)[:80]
    return Response(text, media_type="text/plain; charset=utf-8", headers={
        **NO_STORE, "X-Request-Id": request_id(request),
        "Content-Disposition": f'attachment; filename="{safe}.tlog-proof"'})


@router.get("/consistency", response_model=ConsistencyBody,
            responses={**_ERRORS, 409: {"description": "origin not checkpointed yet"}},
            summary="consistency proof from old_size to the latest checkpoint of origin (audit:read or admin)")
def consistency_route(request: Request,
                      origin: str | None = Query(None, max_length=512, description="required: <log origin>/<topic>/<partition>"),
                      old_size: int | None = Query(None, ge=1, le=2**63 - 1, description="required: the old tree size")):
    from ledger.store.checkpoints import NotCheckpointedError, consistency_from_size
    from ledger.tlog.note import b64

    check_params(request, ("origin", "old_size"))
    p = principal(request)
    if p.is_subject:
        raise not_found()
    if not (p.can(SCOPE_AUDIT) or p.can(SCOPE_ADMIN)):
        raise forbidden(SCOPE_AUDIT)
    for name, value in (("origin", origin), ("old_size", old_size)):  # after the token: a 401 comes first
        if value is None:
            raise ApiError(422, "invalid_parameter", f"{name} is required", name)
    s = state(request)
    try:  # a ValidationError (bad origin or old_size) is a 422 naming the parameter (problems.py)
        latest, proof = consistency_from_size(s.ledger_path, origin, old_size, s.log_origin)
    except NotCheckpointedError as err:
        raise ApiError(409, "not_checkpointed", str(err), "origin") from None
    return JSONResponse({"origin": origin, "old_size": old_size, "size": latest.size, "root": b64(latest.root),
                         "proof": [b64(h) for h in proof], "checkpoint": latest.note}, headers=NO_STORE)
