"""Record a DataAccessed event around code that reads customer data.

    @audit.accessing(source_service="billing", actor=SERVICE, purpose="essential.billing",
                     data_categories=["user.financial.payment_card"], access_type="QUERY",
                     subjects_from="customer_id")
    def load_card(customer_id): ...

    with audit.accessing(..., subject_ids=["cust-000042"]):
        show_account()

The event is validated when the block is entered, so a misconfigured call
raises before any customer data is touched. On exit it is emitted with
``outcome`` GRANTED, or DENIED when the block raised ``PermissionError``; the
block's own exception always propagates.
"""

from __future__ import annotations

import functools
import inspect
from datetime import UTC, datetime
from typing import Any, Callable


class AccessRecorder:
    """Context manager and decorator; made by ``AuditProducer.accessing(**fields)``."""

    def __init__(self, producer, fields: dict[str, Any]):
        self._producer = producer
        self._subjects_from = fields.pop("subjects_from", None)
        self._fields = {"type": "DataAccessed", "outcome": "GRANTED", **fields}
        self._stack: list[dict[str, Any]] = []

    def __enter__(self) -> "AccessRecorder":
        self._stack.append(self._begin(self._fields))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._finish(self._stack.pop(), exc)

    def __call__(self, func: Callable) -> Callable:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            fields = dict(self._fields)
            if self._subjects_from is not None:
                value = signature.bind(*args, **kwargs).arguments[self._subjects_from]
                fields["subject_ids"] = [value] if isinstance(value, str) else list(value)
            event = self._begin(fields)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._finish(event, exc)
                raise
            self._finish(event, None)
            return result

        return wrapper

    def _begin(self, fields: dict[str, Any]) -> dict[str, Any]:
        event = {"occurred_at": datetime.now(UTC), **fields}
        return self._producer.codec.validate(event)  # raises ValidationError before the data is read

    def _finish(self, event: dict[str, Any], exc: BaseException | None) -> None:
        if isinstance(exc, PermissionError):
            event = {**event, "outcome": "DENIED"}
        self._producer.emit(event)
