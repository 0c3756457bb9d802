"""Server-rendered pages: login, the auditor console (/console) and the customer portal (/portal).

Jinja2 with autoescaping on for every template; no JavaScript, no external
resources (one stylesheet from /static), a strict Content-Security-Policy
(app.py). Every page works without JavaScript, by keyboard, with labelled
controls, and on a phone-width window.

The login form exchanges a pasted token for an HttpOnly, SameSite=Strict
cookie (Secure over TLS); the token is checked first and never echoed. The
forms that change state (login, logout) carry a CSRF token, a double-submit
value bound to a cookie of its own, and must come from this origin. Search
forms are GETs: reading is recorded like any API read, with the
justification typed into the form.

The receipt checker (/console/receipt, proofs_pages.py) and the portal's
list of signed checkpoints verify signatures in the browser with WebCrypto
(/static/verify.js); they are the only pages allowed ``script-src 'self'``,
and both work, minus the check, without JavaScript.
"""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..errors import LedgerError
from .auth import COOKIE, auditor, principal
from .params import page_size, paginate, pinned_as_of, time_param, until_for
from .problems import ApiError
from .tokens import TokenError

HERE = Path(__file__).parent
CSRF_COOKIE = "ledger_csrf"
router = APIRouter(include_in_schema=False)
_env = None


def env():
    global _env
    if _env is None:
        from jinja2 import ChainableUndefined, Environment, FileSystemLoader

        # Events differ by type: a field one type lacks renders empty instead of failing the page.
        _env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                           undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
        _env.filters["words"] = lambda s: "" if s is None else str(s).replace("_", " ").lower()
        _env.filters["day"] = lambda s: "" if not s else s[:10]
        _env.filters["clock"] = lambda s: "" if not s else s[11:16] + " UTC"
        _env.globals["describe"] = describe
        _env.globals["who"] = who
    return _env


def mount_static(app) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def page(name: str, status: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(env().get_template(name).render(**context), status_code=status)


# -- plain language -----------------------------------------------------------------------------------
_VERBS = {"VIEW": "viewed", "QUERY": "looked up", "EXPORT": "exported", "MODIFY": "changed", "DELETE": "deleted"}


def who(actor: dict) -> str:
    """An actor in words, as a customer may see it: by role and organisation, never by name or id."""
    role = (actor.get("role") or "").replace("_", " ")
    org = actor.get("organization")
    kind = actor.get("type")
    if kind == "SUBJECT":
        return "You"
    if kind == "SERVICE" or kind == "SYSTEM":
        base = "An automated system"
    elif kind == "AUTHORITY":
        base = f"An {role}" if role[:1] in "aeiou" and role else f"A {role}" if role else "An authority"
    elif kind == "PARTNER":
        base = "A partner company"
    else:
        base = (f"An {role}" if role[:1] in "aeiou" else f"A {role}") if role else "An employee"
    return f"{base} of {org}" if org else base


def describe(view: dict) -> str:
    """One event in a sentence (without the actor, shown apart)."""
    cats = ", ".join(c.lower() for c in (view.get("labels") or {}).get("data_categories", []))
    purpose = ((view.get("labels") or {}).get("purpose") or view.get("purpose") or "").lower()
    t = view.get("type")
    if t == "DataAccessed":
        verb = _VERBS.get(view.get("access_type"), "used")
        outcome = view.get("outcome")
        if outcome == "DENIED":
            return f"tried to see your {cats}, and was refused (reason given: {purpose})"
        prefix = "used emergency access and " if outcome == "BREAK_GLASS" else ""
        return f"{prefix}{verb} your {cats}, for {purpose}"
    recipient = view.get("recipient") or {}
    if t == "DataShared":
        where = f" in {recipient['country']}" if recipient.get("country") else ""
        return f"shared your {cats} with {recipient.get('name')}{where}, for {purpose}"
    if t == "LegalDisclosure":
        req = view.get("request") or {}
        kind = (req.get("kind") or "legal request").replace("_", " ").lower()
        return f"disclosed your {cats} to {recipient.get('name')} in answer to a {kind} from {req.get('authority')}"
    return t or "event"


# -- login, logout ------------------------------------------------------------------------------------
def _csrf(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(CSRF_COOKIE)
    if value and len(value) == 43:
        return value, False
    return secrets.token_urlsafe(32), True


def _with_csrf_cookie(response: Response, request: Request, value: str, new: bool) -> Response:
    if new:
        response.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="strict", path="/",
                            secure=request.app.state.ledger_http.secure_cookies)
    return response


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "send the form as application/x-www-form-urlencoded")
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True, max_num_fields=10).items()}


def _check_csrf(request: Request, form: dict[str, str]) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    same_site = request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if not cookie or not hmac.compare_digest(cookie, sent) or not same_site or (origin not in (None, "null", own)):
        raise ApiError(403, "csrf", "this form did not come from this site (CSRF check failed); reload it", "csrf")


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    return RedirectResponse("/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request):
    csrf, new = _csrf(request)
    return _with_csrf_cookie(page("login.html", csrf=csrf, error=None), request, csrf, new)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    form = await _form(request)
    _check_csrf(request, form)
    csrf, _ = _csrf(request)
    token = form.get("token", "").strip()
    try:
        p = request.app.state.ledger_http.verifier.verify(token)
    except TokenError as err:
        return page("login.html", status=401, csrf=csrf, error=err.reason)
    response = RedirectResponse("/portal" if p.is_subject else "/console", status_code=303)
    response.set_cookie(COOKIE, token, max_age=max(1, p.expires_at - int(time.time())), httponly=True,
                        samesite="strict", path="/", secure=request.app.state.ledger_http.secure_cookies)
    return response


@router.post("/logout")
async def logout(request: Request):
    form = await _form(request)
    _check_csrf(request, form)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _page_principal(request: Request, *, audit: bool):
    """The principal of a page; without a valid token, the login page (401) instead of JSON."""
    try:
        return (auditor if audit else principal)(request), None
    except ApiError as err:
        if err.status == 401:
            csrf, new = _csrf(request)
            return None, _with_csrf_cookie(page("login.html", status=401, csrf=csrf, error=err.message), request,
                                           csrf, new)
        raise


# -- the auditor console ----------------------------------------------------------------------------
SEARCH_KINDS = {"customer": "/console/subject", "employee": "/console/actor", "recipient": "/console/recipient"}


@router.get("/console", response_class=HTMLResponse)
def console(request: Request):
    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    csrf, new = _csrf(request)
    return _with_csrf_cookie(page("console.html", p=p, csrf=csrf, kinds=list(SEARCH_KINDS), error=None), request,
                             csrf, new)


@router.get("/console/search")
def console_search(request: Request, kind: str = "customer", id: str = "", justification: str = ""):
    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    target = SEARCH_KINDS.get(kind)
    if target is None or not id.strip():
        raise ApiError(422, "invalid_parameter", "choose what to search and type an id", "id")
    return RedirectResponse(f"{target}?{urlencode({'id': id.strip(), 'justification': justification})}",
                            status_code=303)


def _console_list(request: Request, p, rows_for, *, title: str, kind: str, ident: str, limit, cursor,
                  filters: dict, downloads: bool = False):
    from . import api

    request.state.channel = "console"
    why = api.justification_of(request, p)
    n = page_size(limit)
    after, pinned = api.read_cursor(request, p, cursor)
    pinned = pinned or pinned_as_of(time_param(filters.get("as_of") or None, "as_of"))
    rows = rows_for(after, pinned)
    result = paginate(rows, n, after, pinned, deadline=time.monotonic() + request.app.state.ledger_http.request_seconds)
    subjects, categories = api._subjects_and_categories(result.items)
    if kind == "customer":
        subjects.add(ident)
    if result.items:
        api.record(request, p, subjects, categories, justification=why)
    next_cursor = api.make_cursor(request, p, result.next_state)
    next_link = None
    if next_cursor:
        q = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"] + [("cursor", next_cursor)]
        next_link = f"{request.url.path}?{urlencode(q)}"
    csrf, new = _csrf(request)
    response = page("console_list.html", p=p, csrf=csrf, title=title, kind=kind, ident=ident, rows=result.items,
                    as_of=pinned, filters=filters, next_link=next_link, justification=why, downloads=downloads,
                    report_query=urlencode({"justification": why}), event_types=_TYPES[kind])
    return _with_csrf_cookie(response, request, csrf, new)


_TYPES = {"customer": ("DataAccessed", "DataShared", "LegalDisclosure"),
          "employee": ("DataAccessed", "DataShared", "LegalDisclosure", "NotificationStatusChanged",
                       "SubjectNotified", "ConsentChanged"),
          "recipient": ("DataShared", "LegalDisclosure")}


def _types(type: str) -> list[str] | None:
    return [type] if type else None


@router.get("/console/subject", response_class=HTMLResponse)
def console_subject(request: Request, id: str, type: str = "", purpose: str = "", since: str = "", until: str = "",
                    as_of: str = "", limit: int | None = None, cursor: str | None = None, justification: str = ""):
    from ledger.audit.query import who_saw

    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    since_t, until_t = time_param(since or None, "since"), time_param(until or None, "until")

    def rows_for(after, pinned):
        return who_saw(request.app.state.ledger_http.ledger(), id, since=since_t, until=until_for(until_t, after),
                       types=_types(type), purpose=purpose or None, as_of=pinned)

    return _console_list(request, p, rows_for, title=f"Customer {id}", kind="customer", ident=id, limit=limit,
                         cursor=cursor, downloads=True,
                         filters={"type": type, "purpose": purpose, "since": since, "until": until, "as_of": as_of})


@router.get("/console/actor", response_class=HTMLResponse)
def console_actor(request: Request, id: str, type: str = "", since: str = "", until: str = "", as_of: str = "",
                  limit: int | None = None, cursor: str | None = None, justification: str = ""):
    from ledger.audit.query import accesses

    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    since_t, until_t = time_param(since or None, "since"), time_param(until or None, "until")

    def rows_for(after, pinned):
        return accesses(request.app.state.ledger_http.ledger(), id, since=since_t, until=until_for(until_t, after),
                        types=_types(type), as_of=pinned)

    return _console_list(request, p, rows_for, title=f"Employee or service {id}", kind="employee", ident=id,
                         limit=limit, cursor=cursor,
                         filters={"type": type, "purpose": "", "since": since, "until": until, "as_of": as_of})


@router.get("/console/recipient", response_class=HTMLResponse)
def console_recipient(request: Request, id: str, type: str = "", since: str = "", until: str = "", as_of: str = "",
                      limit: int | None = None, cursor: str | None = None, justification: str = ""):
    from ledger.audit.query import disclosures

    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    since_t, until_t = time_param(since or None, "since"), time_param(until or None, "until")

    def rows_for(after, pinned):
        return disclosures(request.app.state.ledger_http.ledger(), recipient=id, since=since_t,
                           until=until_for(until_t, after), types=_types(type), as_of=pinned)

    return _console_list(request, p, rows_for, title=f"Recipient {id}", kind="recipient", ident=id, limit=limit,
                         cursor=cursor, filters={"type": type, "purpose": "", "since": since, "until": until,
                                                 "as_of": as_of})


@router.get("/console/recipients", response_class=HTMLResponse)
def console_recipients(request: Request, since: str = "", until: str = "", justification: str = ""):
    from ledger.audit.query import disclosures, summarize_disclosures

    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    rows = disclosures(request.app.state.ledger_http.ledger(), since=time_param(since or None, "since"),
                       until=time_param(until or None, "until"))
    csrf, new = _csrf(request)
    return _with_csrf_cookie(page("console_recipients.html", p=p, csrf=csrf, groups=summarize_disclosures(rows),
                                  since=since, until=until, justification=justification), request, csrf, new)


@router.get("/console/obligations", response_class=HTMLResponse)
def console_obligations(request: Request, overdue: str = "1", justification: str = ""):
    from ledger.audit.obligations import obligations

    from . import api

    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    request.state.channel = "console"
    why = api.justification_of(request, p)
    notices, anomalies = obligations(request.app.state.ledger_http.ledger(), overdue_only=overdue == "1")
    rows = [n.as_dict() for n in notices]
    if rows:
        api.record(request, p, {r["subject_id"] for r in rows}, (), justification=why)
    csrf, new = _csrf(request)
    return _with_csrf_cookie(page("console_obligations.html", p=p, csrf=csrf, rows=rows, anomalies=anomalies,
                                  overdue=overdue == "1", justification=why), request, csrf, new)


# -- the customer portal ----------------------------------------------------------------------------
@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request):
    from ledger.audit.report import build_report

    from . import api

    p, login_page = _page_principal(request, audit=False)
    if login_page:
        return login_page
    if not p.is_subject:
        return RedirectResponse("/console", status_code=303)
    request.state.channel = "portal"
    report = build_report(request.app.state.ledger_http.ledger(), p.subject, audience="subject")
    _, categories = api._subjects_and_categories(report.timeline)
    api.record(request, p, [p.subject], categories, justification=None)
    csrf, new = _csrf(request)
    from .proofs import checkpoints_of
    from .proofs_pages import with_script

    state = request.app.state.ledger_http
    try:
        checkpoints = checkpoints_of(request)
    except (LedgerError, ApiError):  # a ledger without tiles (older format): the report still shows
        checkpoints = []
    return with_script(_with_csrf_cookie(page("portal.html", p=p, csrf=csrf, report=report, checkpoints=checkpoints,
                                              vkeys=[v.vkey for v in state.log_vkeys],
                                              report_vkey=state.report_signer.verifier().vkey
                                              if state.report_signer is not None else None), request, csrf, new),
                       fetch=state.report_signer is not None)
