"""Compact arithmetic: the ``arithmetic`` generator with the question reduced to the expression ("57 + 38 =").

Same knobs, same task distribution and the same integer answer as ``rlvr/Arithmetic-v0``; only the
prompt differs. Built for small byte-level models (the embedded demo trains one on a CPU): such a
model pays for every prompt byte, and the built-in's 100-character instructions made a 1M-parameter
model spend most of its budget learning where the operands are. Its environment,
``rlvr/CompactArithmetic-v0``, has no system prompt: the bare number is the whole answer.
"""

from __future__ import annotations

import numpy as np

from rlvr.envs.generators.arithmetic import ArithmeticGenerator
from rlvr.envs.generators.base import Problem, register_generator
from rlvr.envs.registry import register_env

ENV_ID = "rlvr/CompactArithmetic-v0"


class CompactArithmeticGenerator(ArithmeticGenerator):
    """Arithmetic as a bare expression ("57 + 38 ="); the answer is the integer."""

    name = "compact_arithmetic"

    def generate(self, rng: np.random.Generator) -> Problem:
        problem = super().generate(rng)
        return Problem(question=f"{problem.metadata['expression']} =", answer=problem.answer, metadata=problem.metadata)


register_generator(CompactArithmeticGenerator)
register_env(
    ENV_ID,
    "rlvr.envs.procedural:ProceduralEnv",
    kwargs={"generator": "compact_arithmetic", "system_prompt": ""},
    description="Arithmetic as a bare expression ('57 + 38 ='), answered with the integer; for small byte-level models.",
)

__all__ = ["CompactArithmeticGenerator", "ENV_ID"]
