"""The pages that verify in the browser: the console's receipt checker (/console/receipt).

The checks run in /static/verify.js with WebCrypto (Ed25519, SHA-256): the receipt pasted into the
page never leaves the browser, so checking it is not a read of the ledger and is not recorded.
These pages (and the portal's checkpoint list) are the only ones whose Content-Security-Policy
allows a script, and only from this origin (``script-src 'self'``): no inline script, no eval.
The portal of a server with a report key (/static/report_verify.js) may also fetch from this
origin (``connect-src 'self'``): the check fetches the customer's signed report, a recorded read.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .app import CSP

#: For the pages that load /static/verify.js.
CSP_WITH_SCRIPT = CSP + "; script-src 'self'"
#: The portal with a signed report: its script also fetches that report from this origin, nothing else.
CSP_WITH_SCRIPT_AND_FETCH = CSP_WITH_SCRIPT + "; connect-src 'self'"
router = APIRouter(include_in_schema=False)


def with_script(response, *, fetch: bool = False):
    response.headers["Content-Security-Policy"] = CSP_WITH_SCRIPT_AND_FETCH if fetch else CSP_WITH_SCRIPT
    return response


@router.get("/console/receipt", response_class=HTMLResponse)
def console_receipt(request: Request):
    from .pages import _csrf, _page_principal, _with_csrf_cookie, page

    p, login_page = _page_principal(request, audit=True)
    if login_page:
        return login_page
    csrf, new = _csrf(request)
    vkeys = [v.vkey for v in request.app.state.ledger_http.log_vkeys]
    return with_script(_with_csrf_cookie(page("console_receipt.html", p=p, csrf=csrf, vkeys=vkeys), request,
                                         csrf, new))
