"""rlvr.verifiers: score a completion against a reference, as a library, a CLI, or a TRL reward.

    >>> from rlvr.verifiers import MathVerifier
    >>> MathVerifier().score("... so the answer is \\boxed{\\frac{1}{2}}", "0.5").correct
    True

Importing this package never imports torch.

A new verifier is one file in this folder ending in ``@register_verifier("name")`` on its class
(``rlvr.verifiers.registry``: the folder's modules are imported on first lookup, so nothing else
changes); a third-party package registers through the entry-point group ``rlvr.verifiers``.
"""

from rlvr.verifiers.base import Verifier, completion_text
from rlvr.verifiers.code import CodeVerifier
from rlvr.verifiers.composite import CompositeVerifier
from rlvr.verifiers.format import FormatVerifier
from rlvr.verifiers.math import MathVerifier
from rlvr.verifiers.registry import get_verifier, register_verifier, verifier_names
from rlvr.verifiers.score import STATUSES, Score
from rlvr.verifiers.string import StringVerifier

__all__ = [
    "Score",
    "STATUSES",
    "Verifier",
    "completion_text",
    "MathVerifier",
    "CodeVerifier",
    "StringVerifier",
    "FormatVerifier",
    "CompositeVerifier",
    "get_verifier",
    "register_verifier",
    "verifier_names",
]
