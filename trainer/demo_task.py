"""The demo's task: ``demo/Arithmetic-v0``, two-number arithmetic written compactly ("57 + 38 =").

It is ``rlvr/Arithmetic-v0`` (same generator knobs, same ``ProceduralEnv``, same math verifier)
with the question reduced to the expression. A byte-level model pays for every prompt byte on a
CPU, and the built-in's 100-character instructions made a 1M-parameter model spend most of the
demo's budget learning where the operands are. Registered through the public extension points
(``register_generator``, ``register_env``) on import of this module, which ``rlvr.trainer``'s
run code does before resolving environment ids.
"""

from __future__ import annotations

import numpy as np

from rlvr.envs.generators.arithmetic import ArithmeticGenerator
from rlvr.envs.generators.base import Problem, register_generator
from rlvr.envs.registry import register_env

DEMO_ENV_ID = "demo/Arithmetic-v0"


class CompactArithmeticGenerator(ArithmeticGenerator):
    """Arithmetic as a bare expression ("57 + 38 ="); the answer is the integer."""

    name = "compact_arithmetic"

    def generate(self, rng: np.random.Generator) -> Problem:
        problem = super().generate(rng)
        return Problem(question=f"{problem.metadata['expression']} =", answer=problem.answer, metadata=problem.metadata)


register_generator(CompactArithmeticGenerator)
register_env(
    DEMO_ENV_ID,
    "rlvr.envs.procedural:ProceduralEnv",
    kwargs={"generator": "compact_arithmetic", "system_prompt": ""},
    description="Compact arithmetic for the embedded demo (the expression, then the integer answer).",
)

__all__ = ["CompactArithmeticGenerator", "DEMO_ENV_ID"]
