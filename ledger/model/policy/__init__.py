"""The policy file: what the privacy policy promises, as rules the evaluator (ledger.findings) checks.

``load(path)`` / ``loads(text)`` return a checked :class:`Policy` or raise
:class:`~ledger.errors.PolicyError` naming the line (load.py); the rules
are plain data (model.py); ``describe(policy)`` says them in words
(describe.py); ``lines.py`` finds the line of a key.
"""

from ledger.errors import PolicyError

from .describe import describe
from .load import load, loads
from .model import RULES, Policy
from .published import policy_of, published_fields

__all__ = ["load", "loads", "describe", "Policy", "PolicyError", "RULES", "policy_of", "published_fields"]
