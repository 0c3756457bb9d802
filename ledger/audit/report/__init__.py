"""Reports on one customer, and the output writers the query commands share.

    from ledger.audit.report import build_report, render
    report = build_report(ledger, "cust-000042", audience="subject")
    text = render(report, "html")          # or "json", "csv"

Reading guide: ``model.py`` builds the report's data, ``audience.py`` is the
filter for what a customer may see, ``render_html.py`` / ``render_csv.py``
format it; ``tabular.py`` and ``columns.py`` serve the query commands;
``inert.py`` makes stored text harmless on the way out (CSV formulas,
terminal escapes, invisible characters); ``proofs.py`` attaches receipts,
positions and the report signature, ``opened.py`` checks a customer's
report against receipts an auditor opened.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Report

FORMATS = ("json", "html", "csv")

__all__ = ["AccountingRules", "Report", "build_report", "render", "FORMATS"]


def __getattr__(name: str):
    """The model's names on first use, so ``audience`` and ``opened`` import without the store (PEP 562)."""
    if name in ("AccountingRules", "Report", "build_report"):
        from . import model

        value = getattr(model, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
