"""``GET /v1/findings``: ``ledger findings`` over HTTP (audit:read), paged by cursor.

The same filters (rule, subject, actor, recipient, since, until, as_of; ledger.audit.findings.select)
and the items as ``ledger findings --format json`` prints them; the policy is the one the ledger
recorded (no draft policy from a request). Time rules are judged at ``as_of``, else at the instant
the first page pinned, which later pages keep: the list is fixed for a cursor however much the
ledger grew since, and a cursor names the last finding id it returned. The answer is recorded as a
read of the customers the page's findings name.

Judging reads the whole ledger (about 80,000 events/s, BENCHMARKS.md "Promise checks"), so the
judged run of a pinned instant is kept (the last :data:`KEPT_RUNS` of them): the pages after the
first reuse it instead of judging again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ledger.errors import PolicyError

from .api import _ERRORS, _bearer, check_params, justification_of, query_items, record, request_id, route_of, state
from .auth import auditor
from .cursor import binding
from .params import MAX_PAGE, page_size, pinned_as_of, time_param
from .problems import NO_STORE, ApiError

router = APIRouter(prefix="/v1", dependencies=[Depends(_bearer)], tags=["findings"])
KEPT_RUNS = 4
_runs: OrderedDict = OrderedDict()
_runs_lock = threading.Lock()
PARAMS = ("as_of", "since", "until", "rule", "subject", "actor", "recipient", "limit", "cursor", "justification")


def judged(request: Request, pinned: str):
    """The findings run of the ledger as recorded by ``pinned`` (judged at ``pinned``), kept for later pages."""
    from ledger.audit.findings.recorded import judge_ledger

    key = (str(state(request).ledger_path), pinned)
    with _runs_lock:
        run = _runs.get(key)
        if run is not None:
            _runs.move_to_end(key)
            return run
    run = judge_ledger(state(request).ledger(), as_of=pinned)
    if run.judged_at > datetime.now(timezone.utc):
        return run  # an as_of in the future: entries still to come belong to it, so it is not kept
    with _runs_lock:
        _runs[key] = run
        while len(_runs) > KEPT_RUNS:
            _runs.popitem(last=False)
    return run


def _bound(request: Request, p) -> bytes:
    return binding(p.jti, p.holder["id"], route_of(request), query_items(request))


@router.get("/findings", responses={**_ERRORS, 409: {"description": "no policy is recorded in the ledger"},
            200: {"description": "one page of findings, in the order `ledger findings` lists them"}},
            summary="events that break the recorded policy's promises (ledger findings; audit:read)")
def findings_route(
    request: Request,
    as_of: str | None = Query(None, description="the ledger as it stood at recorded time T; rules judged at T"),
    since: str | None = Query(None, description="findings about events that occurred at or after T"),
    until: str | None = Query(None, description="findings about events that occurred before T"),
    rule: list[str] | None = Query(None, description="this rule (repeatable; a prefix ending in '.' matches below)"),
    subject: str | None = Query(None), actor: str | None = Query(None), recipient: str | None = Query(None),
    limit: int | None = Query(None, ge=1, le=MAX_PAGE), cursor: str | None = Query(None, max_length=1024),
    justification: str | None = Query(None),
):
    from ledger.audit.findings import current
    from ledger.audit.findings.select import select
    from ledger.model.events import time_text

    check_params(request, PARAMS)
    p = auditor(request)
    why = justification_of(request, p)
    n = page_size(limit)
    since_t, until_t, as_of_t = time_param(since, "since"), time_param(until, "until"), time_param(as_of, "as_of")
    after, pinned = None, None
    if cursor is not None:
        s = state(request).signer.read(_bound(request, p), cursor)
        after, pinned = s.get("f"), s.get("a")
        if not isinstance(after, str) or not isinstance(pinned, str):
            raise ApiError(400, "invalid_cursor", "this cursor cannot be read; ask for the first page again", "cursor")
    pinned = pinned or pinned_as_of(as_of_t)
    try:
        run = judged(request, pinned)
    except PolicyError as err:
        raise ApiError(409, "no_policy", err.reason) from None
    chosen = select(run, current(run.results), rules=rule, subject=subject, actor=actor, recipient=recipient,
                    since=since_t, until=until_t)
    start = 0
    if after is not None:
        ids = [f.finding_id for f in chosen]
        if after not in ids:
            raise ApiError(400, "invalid_cursor", "the finding this cursor stopped at is gone; ask for the first "
                           "page again", "cursor")
        start = ids.index(after) + 1
    page = chosen[start:start + n]
    more = start + n < len(chosen)
    next_cursor = state(request).signer.make(_bound(request, p), {"f": page[-1].finding_id, "a": pinned}) \
        if more and page else None
    subjects = {s for f in page for s in f.subjects}
    record(request, p, subjects, (), justification=why)
    policy = run.policies[-1]
    broken = sum(1 for f in chosen if f.kind == "broken")
    body = {"items": [f.as_json() for f in page], "next_cursor": next_cursor, "limit": n, "as_of": pinned,
            "judged_at": time_text(run.judged_at), "time_zone": "UTC",
            "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256},
            "broken": broken, "not_judgeable": len(chosen) - broken}
    return JSONResponse(body, headers={**NO_STORE, "X-Request-Id": request_id(request)})
