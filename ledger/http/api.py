"""The /v1 routes: what the CLI answers, over HTTP, through the same library functions.

Each route checks who asks (auth.py), reads its parameters with the CLI's
rules (params.py), calls one library function (``ledger.query``,
``ledger.obligations``, ``ledger.report``, ``ledger.verify``, the store's
heads), records the read (recording.py) and only then answers. Subject
tokens get the subject audience everywhere, as ``ledger report --audience
subject`` defines it (``ledger.report.audience``): delayed legal
disclosures withheld, no other customer's ids, no staff ids, no
justification notes.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from .auth import admin, any_reader, auditor, reader_of_subject
from .cursor import binding
from .jsonbody import PageJSONResponse
from .params import (
    MAX_PAGE,
    page_size,
    paginate,
    pinned_as_of,
    time_param,
    until_for,
    with_deadline,
)
from .problems import NO_STORE, ApiError
from .recording import MAX_JUSTIFICATION
from .tokens import Principal

_bearer = HTTPBearer(auto_error=False, description="a token from `ledger tokens issue`")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Query parameters that are not part of a query's identity (the cursor binding and the recorded query).
_NOT_QUERY = ("cursor", "limit", "justification")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


class PageBody(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None
    limit: int
    as_of: str
    time_zone: Literal["UTC"]


_ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in (
    (400, "bad request or refused cursor"), (401, "no valid bearer token"), (403, "token lacks the scope"),
    (404, "nothing there, or not for this token"), (422, "a parameter is invalid (field names it)"),
    (413, "request body too large"), (414, "URL too long"), (429, "busy (verify already running)"),
    (503, "the ledger cannot be read, or this read could not be recorded"))}
_DATA = {**_ERRORS, 200: {"model": PageBody, "description": "one page, newest first"}}

router = APIRouter(prefix="/v1", dependencies=[Depends(_bearer)])


# -- helpers ----------------------------------------------------------------------------------------
def state(request: Request):
    return request.app.state.ledger_http


def check_params(request: Request, allowed: tuple[str, ...]) -> None:
    """Unknown query parameters are refused by name: a typo must not silently widen an answer."""
    for name in request.query_params.keys():
        if name not in allowed:
            raise ApiError(422, "unknown_parameter", f"unknown query parameter {name!r}; known: "
                           f"{', '.join(allowed) or 'none'}", name)


def query_items(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k not in _NOT_QUERY]


def query_text(request: Request) -> str:
    from urllib.parse import urlencode

    return urlencode(sorted(query_items(request)))


def justification_of(request: Request, p: Principal) -> str | None:
    """The auditor's reason for this read: ``X-Justification`` (or ``justification=`` from the console's forms)."""
    text = request.headers.get("x-justification") or request.query_params.get("justification")
    if p.is_subject:
        return None
    if text is None or not text.strip():
        raise ApiError(422, "justification_required", "an audit read needs a reason: send it in the "
                       "X-Justification header (it is recorded with the read)", "X-Justification")
    text = text.strip()
    if len(text) > MAX_JUSTIFICATION or _CONTROL.search(text):
        raise ApiError(422, "invalid_parameter", f"X-Justification must be printable text of at most "
                       f"{MAX_JUSTIFICATION} characters", "X-Justification")
    return text


def request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.state.request_id = str(uuid.uuid4())
    return rid


def route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


def read_cursor(request: Request, p: Principal, cursor: str | None) -> tuple[tuple[int, str] | None, str | None]:
    if cursor is None:
        return None, None
    bound = binding(p.jti, p.holder["id"], route_of(request) + "|" + request.url.path, query_items(request))
    s = state(request).signer.read(bound, cursor)
    try:
        return (int(s["t"]), str(s["e"])), str(s["a"])
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "invalid_cursor", "this cursor cannot be read; ask for the first page again",
                       "cursor") from None


def make_cursor(request: Request, p: Principal, next_state: dict | None) -> str | None:
    if next_state is None:
        return None
    bound = binding(p.jti, p.holder["id"], route_of(request) + "|" + request.url.path, query_items(request))
    return state(request).signer.make(bound, next_state)


def record(request: Request, p: Principal, subjects, categories, *, justification, export=False) -> None:
    state(request).recorder.record(p, subjects, categories, route=route_of(request), query=query_text(request),
                                   request_id=request_id(request), justification=justification, export=export,
                                   channel=getattr(request.state, "channel", "api"))


def _subjects_and_categories(rows) -> tuple[set[str], set[str]]:
    subjects, categories = set(), set()
    for r in rows:
        subjects.update(r.get("subject_ids") or ())
        if r.get("subject_id"):
            subjects.add(r["subject_id"])
        categories.update(r.get("data_categories") or ())
    return subjects, categories


def page_response(page, p: Principal, request: Request, limit: int, **extra) -> JSONResponse:
    body = {**extra, "items": page.items, "next_cursor": make_cursor(request, p, page.next_state),
            "limit": limit, "as_of": page.as_of, "time_zone": "UTC"}
    return PageJSONResponse(body, headers={**NO_STORE, "X-Request-Id": request_id(request)})


def subject_filter(ledger, subject: str, as_of: str):
    """``keep`` for paginate: the subject audience of ``ledger.report`` (its SubjectRules), one row at a time."""
    from ledger.audit.report.audience import SubjectRules
    from ledger.model.times import parse_time

    return SubjectRules.load(ledger, subject, as_of=as_of, judged=parse_time(as_of)).view


def _deadline(request: Request) -> float:
    return time.monotonic() + state(request).request_seconds


# -- routes -----------------------------------------------------------------------------------------
@router.get("/subjects/{subject_id}/who-saw", responses=_DATA, summary="who saw a customer's data (ledger who-saw)")
def who_saw_route(
    request: Request, subject_id: str,
    since: str | None = Query(None, description="ISO-8601 with offset; inclusive, event time"),
    until: str | None = Query(None, description="ISO-8601 with offset; exclusive, event time"),
    as_of: str | None = Query(None, description="as the ledger stood at this recorded time"),
    type: list[str] | None = Query(None, description="DataAccessed, DataShared, LegalDisclosure (repeatable)"),
    actor: str | None = Query(None, description="only this actor id (auditors only)"),
    purpose: str | None = Query(None, description="purpose code and its dotted children"),
    limit: int | None = Query(None, ge=1, le=MAX_PAGE), cursor: str | None = Query(None, max_length=1024),
    justification: str | None = Query(None, description="for the console's forms; else X-Justification"),
):
    from ledger.audit.query import who_saw

    check_params(request, ("since", "until", "as_of", "type", "actor", "purpose", "limit", "cursor", "justification"))
    p = reader_of_subject(request, subject_id)
    if p.is_subject and actor is not None:
        raise ApiError(422, "invalid_parameter", "a customer's token cannot filter by staff id", "actor")
    why = justification_of(request, p)
    n = page_size(limit)
    since_t, until_t, as_of_t = time_param(since, "since"), time_param(until, "until"), time_param(as_of, "as_of")
    after, pinned = read_cursor(request, p, cursor)
    pinned = pinned or pinned_as_of(as_of_t)
    ledger = state(request).ledger()
    rows = who_saw(ledger, subject_id, since=since_t, until=until_for(until_t, after), types=type, actor=actor,
                   purpose=purpose, as_of=pinned)
    keep = subject_filter(ledger, subject_id, pinned) if p.is_subject else (lambda r: r)
    page = paginate(rows, n, after, pinned, keep, _deadline(request))
    if page.items:
        subjects, categories = _subjects_and_categories(page.items)
        record(request, p, [subject_id] if p.is_subject else subjects | {subject_id}, categories, justification=why)
    return page_response(page, p, request, n, subject=subject_id,
                         audience="subject" if p.is_subject else "auditor")


@router.get("/subjects/{subject_id}/report", responses={**_ERRORS, 409: {
            "model": ErrorBody, "description": "signed=true: no report key configured, or a line under no checkpoint yet"},
            200: {"description": "the report (json, html or csv)",
            "content": {"application/json": {}, "text/html": {}, "text/csv": {}}}},
            summary="report on one customer (ledger report)")
def report_route(
    request: Request, subject_id: str,
    format: Literal["json", "html", "csv"] = Query("json"),
    audience: Literal["subject", "auditor"] | None = Query(None, description="default subject; auditors may ask auditor"),
    as_of: str | None = Query(None),
    lookback_years: int = Query(6, ge=1, le=100),
    exclude_purpose: list[str] | None = Query(None), exclude_recipient_kind: list[str] | None = Query(None),
    include_consented: bool = Query(False), justification: str | None = Query(None),
    signed: bool = Query(False, description="json only: the report signed with the server's report key "
                         "(--report-key), with log positions and checkpoints; check it with `ledger verify-report`"),
):
    from ledger.audit.report import AccountingRules, build_report, render

    check_params(request, ("format", "audience", "as_of", "lookback_years", "exclude_purpose",
                           "exclude_recipient_kind", "include_consented", "justification", "signed"))
    p = reader_of_subject(request, subject_id)
    if p.is_subject and audience not in (None, "subject"):
        raise ApiError(422, "invalid_parameter", "a customer's token reads the subject audience only", "audience")
    why = justification_of(request, p)
    audience = audience or "subject"
    as_of_t = time_param(as_of, "as_of")
    rules = AccountingRules.from_options(exclude_purpose, exclude_recipient_kind, include_consented, lookback_years)
    if signed:
        report, text = signed_report(request, subject_id, format, audience=audience, as_of=as_of_t, rules=rules)
    else:
        report = build_report(state(request).ledger(), subject_id, audience=audience, as_of=as_of_t, rules=rules)
    subjects, categories = _subjects_and_categories(report.timeline)
    record(request, p, {subject_id} if audience == "subject" else subjects | {subject_id}, categories,
           justification=why, export=True)
    if not signed:
        text = render(report, format)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", subject_id)[:80] or "subject"
    name = f"report-{safe}.signed.json" if signed else f"report-{safe}.{format}"
    headers = {**NO_STORE, "X-Request-Id": request_id(request), "Content-Disposition": f'attachment; filename="{name}"'}
    if format == "html":
        # The report's own inline stylesheet, no script of any kind, nothing loaded from anywhere.
        headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        return Response(text, media_type="text/html; charset=utf-8", headers=headers)
    if format == "csv":
        # render_csv already made every cell inert (ledger.audit.report.inert.csv_cell), as for the CLI.
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(text, media_type="application/json", headers=headers)


def signed_report(request: Request, subject_id: str, format: str, **options):
    """(report, its signed JSON text) as ``ledger report --format json --sign-key`` makes it, in one snapshot.

    Built before the read is recorded: a report that cannot be signed (no report key, an entry under
    no checkpoint yet) is refused and was never a read.
    """
    from ledger.audit.report.proofs import build_report_with_proofs, render_proved
    from ledger.store.checkpoints import NotCheckpointedError

    s = state(request)
    if format != "json":
        raise ApiError(422, "invalid_parameter", f"a signed report is JSON only (format=json, not {format})", "format")
    if s.report_signer is None:
        raise ApiError(409, "not_configured", "this server signs no reports: it was started without --report-key "
                       "FILE (a report key from `ledger keys generate NAME --out DIR --report`)", "signed")
    try:
        report = build_report_with_proofs(s.ledger(), subject_id, log_origin=s.log_origin, **options)
    except NotCheckpointedError as err:
        raise ApiError(409, "not_checkpointed", f"{err}", "signed") from None
    return report, render_proved(report, s.report_signer)


@router.get("/actors/{actor_id}/accesses", responses=_DATA, summary="everything one actor did (ledger accesses)")
def accesses_route(
    request: Request, actor_id: str,
    since: str | None = Query(None), until: str | None = Query(None), as_of: str | None = Query(None),
    type: list[str] | None = Query(None), limit: int | None = Query(None, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=1024), justification: str | None = Query(None),
):
    from ledger.audit.query import accesses

    check_params(request, ("since", "until", "as_of", "type", "limit", "cursor", "justification"))
    p = auditor(request)
    why = justification_of(request, p)
    n = page_size(limit)
    since_t, until_t, as_of_t = time_param(since, "since"), time_param(until, "until"), time_param(as_of, "as_of")
    after, pinned = read_cursor(request, p, cursor)
    pinned = pinned or pinned_as_of(as_of_t)
    rows = accesses(state(request).ledger(), actor_id, since=since_t, until=until_for(until_t, after), types=type,
                    as_of=pinned)
    page = paginate(rows, n, after, pinned, deadline=_deadline(request))
    subjects, categories = _subjects_and_categories(page.items)
    record(request, p, subjects, categories, justification=why)
    return page_response(page, p, request, n, actor=actor_id)


def _disclosure_rows(request, recipient, kind, since, until, type, as_of, after=None, pinned=None):
    from ledger.audit.query import disclosures

    since_t, until_t = time_param(since, "since"), time_param(until, "until")
    pinned = pinned or pinned_as_of(time_param(as_of, "as_of"))
    rows = disclosures(state(request).ledger(), recipient=recipient, kind=kind, since=since_t,
                       until=until_for(until_t, after), types=type, as_of=pinned)
    return rows, pinned


@router.get("/disclosures", responses=_DATA, summary="what went to whom (ledger disclosures)")
def disclosures_route(
    request: Request, recipient: str | None = Query(None), kind: str | None = Query(None),
    type: list[str] | None = Query(None), since: str | None = Query(None), until: str | None = Query(None),
    as_of: str | None = Query(None), limit: int | None = Query(None, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=1024), justification: str | None = Query(None),
):
    check_params(request, ("recipient", "kind", "type", "since", "until", "as_of", "limit", "cursor", "justification"))
    p = auditor(request)
    why = justification_of(request, p)
    n = page_size(limit)
    after, pinned = read_cursor(request, p, cursor)
    rows, pinned = _disclosure_rows(request, recipient, kind, since, until, type, as_of, after, pinned)
    page = paginate(rows, n, after, pinned, deadline=_deadline(request))
    subjects, categories = _subjects_and_categories(page.items)
    record(request, p, subjects, categories, justification=why)
    return page_response(page, p, request, n)


@router.get("/disclosures/summary", responses=_ERRORS, summary="one row per recipient (ledger disclosures --summary)")
def disclosures_summary_route(
    request: Request, recipient: str | None = Query(None), kind: str | None = Query(None),
    type: list[str] | None = Query(None), since: str | None = Query(None), until: str | None = Query(None),
    as_of: str | None = Query(None), justification: str | None = Query(None),
):
    from ledger.audit.query import summarize_disclosures

    check_params(request, ("recipient", "kind", "type", "since", "until", "as_of", "justification"))
    p = auditor(request)
    justification_of(request, p)
    rows, pinned = _disclosure_rows(request, recipient, kind, since, until, type, as_of)
    # Counts per recipient, no customer ids: not a read of customer data, so not recorded.
    groups = summarize_disclosures(with_deadline(rows, _deadline(request)))
    return JSONResponse({"items": groups, "as_of": pinned, "time_zone": "UTC"},
                        headers={**NO_STORE, "X-Request-Id": request_id(request)})


@router.get("/obligations", responses=_DATA, summary="notices still owed to customers (ledger obligations)")
def obligations_route(
    request: Request, as_of: str | None = Query(None, description="as recorded by T, judged at T (default now)"),
    overdue: bool = Query(False), limit: int | None = Query(None, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=1024), justification: str | None = Query(None),
):
    from ledger.audit.obligations import obligations

    check_params(request, ("as_of", "overdue", "limit", "cursor", "justification"))
    p = auditor(request)
    why = justification_of(request, p)
    n = page_size(limit)
    as_of_t = time_param(as_of, "as_of")
    after, pinned = read_cursor(request, p, cursor)
    pinned = pinned or pinned_as_of(as_of_t)
    notices, anomalies = obligations(state(request).ledger(), as_of=pinned, overdue_only=overdue)
    # Newest disclosure first, then by disclosure id and customer: a total order the cursor can name.
    rows = sorted((dict(x.as_dict(), occurred_at=x.as_dict()["disclosed_at"],
                        event_id=f"{x.disclosure_event_id}\x1f{x.subject_id}") for x in notices),
                  key=lambda r: (r["occurred_at"], r["event_id"]), reverse=True)
    page = paginate(rows, n, after, pinned, lambda r: {k: v for k, v in r.items() if k not in ("occurred_at", "event_id")},
                    _deadline(request))
    subjects, _ = _subjects_and_categories(page.items)
    record(request, p, subjects, (), justification=why)
    extra = {"judged_at": pinned}
    if cursor is None:
        extra["anomalies"] = anomalies
    return page_response(page, p, request, n, **extra)


@router.get("/heads", summary="each partition's latest offset and chain hash (ledger head --json)",
            responses=_ERRORS)
def heads_route(request: Request):
    check_params(request, ())
    any_reader(request)
    heads = state(request).ledger().heads()
    return JSONResponse({"heads": [{"topic": h.topic, "partition": h.partition, "offset": h.offset,
                                    "chain_hash": h.chain_hash.hex()} for h in heads]},
                        headers={"Cache-Control": "no-store"})


_verify_lock = threading.Lock()


@router.get("/verify", summary="recompute every hash (ledger verify); admin only", responses=_ERRORS)
def verify_route(request: Request, max_problems: int = Query(100, ge=0, le=1000)):
    from ledger.audit.verify import verify_ledger

    check_params(request, ("max_problems",))
    admin(request)
    if not _verify_lock.acquire(blocking=False):
        raise ApiError(429, "busy", "a verification is already running; ask again when it has finished")
    try:
        from ..store import Ledger

        # A connection of its own: verify reads one snapshot for a long time.
        with Ledger.open(state(request).ledger_path, readonly=True) as ledger:
            report = verify_ledger(ledger, max_problems=max_problems)
    finally:
        _verify_lock.release()
    return JSONResponse({"ok": report.ok, "checked": report.checked, "problem_count": report.problem_count,
                         "problems": [str(x) for x in report.problems], "notes": list(report.notes)},
                        headers={"Cache-Control": "no-store"})
