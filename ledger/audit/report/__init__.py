"""Reports on one customer, and the output writers the query commands share.

    from ledger.audit.report import build_report, render
    report = build_report(ledger, "cust-000042", audience="subject")
    text = render(report, "html")          # or "json", "csv"

Reading guide: ``model.py`` builds the report's data, ``audience.py`` is the
filter for what a customer may see, ``render_html.py`` / ``render_csv.py``
format it; ``tabular.py`` and ``columns.py`` serve the query commands;
``inert.py`` makes stored text harmless on the way out (CSV formulas,
terminal escapes, invisible characters).
"""

from __future__ import annotations

import json

from .model import AccountingRules, Report, build_report

FORMATS = ("json", "html", "csv")

__all__ = ["AccountingRules", "Report", "build_report", "render", "FORMATS"]


def render(report: Report, fmt: str) -> str:
    """The report as text in ``fmt`` (json, html or csv)."""
    if fmt == "html":
        from .render_html import render_html

        return render_html(report)
    if fmt == "csv":
        from .render_csv import render_csv

        return render_csv(report)
    from .inert import json_inert

    return json_inert(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, sort_keys=False)) + "\n"
