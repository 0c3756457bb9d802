"""Promise checks: a policy (ledger.policy) judged against events, finding by finding.

Start at :func:`evaluate` (evaluate.py); :class:`Finding` and
:class:`Retraction` are in model.py, the sentences in sentences.py.
"""

from .evaluate import Evaluator, current, evaluate, tally
from .model import Finding, Retraction, finding_id, recorded_order_key

__all__ = ["evaluate", "current", "tally", "Evaluator", "Finding", "Retraction", "finding_id", "recorded_order_key"]
