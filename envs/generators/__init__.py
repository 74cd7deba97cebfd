"""Procedural task generators, one per file; importing this package registers them all.

Each generator file also registers its single-turn environment (``rlvr/<Name>-v0``).
"""

from rlvr.envs.generators.base import (
    GeneratorConfig,
    Problem,
    TaskGenerator,
    generator_class,
    generator_names,
    get_generator,
    register_generator,
)
from rlvr.envs.generators import arithmetic, base_conversion, countdown, letter_counting, linear_equation  # noqa: F401  (registration)

__all__ = [
    "GeneratorConfig",
    "Problem",
    "TaskGenerator",
    "register_generator",
    "get_generator",
    "generator_class",
    "generator_names",
]
