"""Procedural task generators, one per file ending in ``@register_generator`` on its class;
importing this package registers them all (a new file needs no import line here: the registry
imports every module of this folder when it is first listed or misses a name).

Each generator file also registers its single-turn environment (``rlvr/<Name>-v0``).
"""

from rlvr.envs.generators.base import (
    GENERATORS,
    GeneratorConfig,
    Problem,
    TaskGenerator,
    generator_class,
    generator_names,
    get_generator,
    register_generator,
)
from rlvr.envs.generators import (  # noqa: F401  (registration)
    arithmetic,
    base_conversion,
    compact_arithmetic,
    countdown,
    letter_counting,
    linear_equation,
)

__all__ = [
    "GeneratorConfig",
    "Problem",
    "TaskGenerator",
    "register_generator",
    "get_generator",
    "generator_class",
    "generator_names",
]
