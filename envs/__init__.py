"""rlvr.envs: Gymnasium text environments that turn verifiers into reward sources.

    import gymnasium, rlvr.envs
    env = gymnasium.make("rlvr/Arithmetic-v0", difficulty=3)
    obs, info = env.reset(seed=0)                  # obs: [{"role": "system", ...}, {"role": "user", ...}]
    obs, reward, terminated, truncated, info = env.step("<answer>42</answer>")
    info["reward_components"], info["success"]     # {"correct": 0.0, "format": 0.0}, False

Importing this package registers every built-in environment (``rlvr/<Name>-v<N>``) and every
installed plugin (entry-point group ``rlvr.envs``) with Gymnasium. ``rlvr.envs.check(env)``
runs Gymnasium's ``check_env`` plus reward sanity checks. Never imports torch.

Extension points, each one file plus one registration: an environment (``register_env`` at the
bottom of its module, or an ``rlvr.envs`` entry point), a task generator
(``@register_generator`` in ``envs/generators/``), a policy kind for ``rlvr eval``
(``register_policy`` or an ``rlvr.policies`` entry point); ``docs/architecture.md`` has the table.
"""

from rlvr.envs.core import TextEnv, Turn
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.scoring import shared_verifier
from rlvr.envs.single_turn import SingleTurnEnv
from rlvr.envs.sources import (
    Curriculum,
    HFDatasetSource,
    JsonlSource,
    ListSource,
    Mixture,
    ProceduralSource,
    TaskSource,
    as_source,
)
from rlvr.envs.spaces import ChatMessages, UnicodeText
from rlvr.envs.task import Task
from rlvr.envs.generators import GeneratorConfig, Problem, TaskGenerator, generator_names, get_generator, register_generator
from rlvr.envs.procedural import ProceduralEnv
from rlvr.envs import builtin  # noqa: F401  (registers the built-in environments)
from rlvr.envs.registry import (
    PluginError,
    broken_plugins,
    discover_plugins,
    env_ids,
    make,
    register_env,
    resolve_env_id,
)
from rlvr.envs.check import CheckReport, EnvCheckError, check
from rlvr.envs.describe import EnvInfo, describe
from rlvr.envs.trl_export import reward_funcs, to_dataset

from rlvr.envs.adapters import register_adapters

register_adapters()
discover_plugins()

__all__ = [
    "TextEnv",
    "Turn",
    "SingleTurnEnv",
    "ProceduralEnv",
    "Component",
    "Rubric",
    "Task",
    "TaskSource",
    "ListSource",
    "JsonlSource",
    "HFDatasetSource",
    "ProceduralSource",
    "Mixture",
    "Curriculum",
    "as_source",
    "ChatMessages",
    "UnicodeText",
    "GeneratorConfig",
    "Problem",
    "TaskGenerator",
    "register_generator",
    "get_generator",
    "generator_names",
    "shared_verifier",
    "register_env",
    "discover_plugins",
    "env_ids",
    "broken_plugins",
    "resolve_env_id",
    "make",
    "PluginError",
    "check",
    "CheckReport",
    "EnvCheckError",
    "describe",
    "EnvInfo",
    "to_dataset",
    "reward_funcs",
]
