"""Built-in environments, one per file; each file registers its id at the bottom.

Procedural single-turn environments (Arithmetic, Countdown, ...) are registered by their
generator files in :mod:`rlvr.envs.generators`.
"""

import importlib

BUILTIN_MODULES = (
    "rlvr.envs.builtin.math",
    "rlvr.envs.builtin.guess_number",
    "rlvr.envs.builtin.code",
    "rlvr.envs.builtin.python_tool",
)

for _name in BUILTIN_MODULES:
    importlib.import_module(_name)
