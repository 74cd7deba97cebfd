"""rlvr.envs.evaluation: evaluate a policy on an environment — pass@k, rewards, rollouts.

    >>> from rlvr.envs.evaluation import evaluate
    >>> report = evaluate("rlvr/Arithmetic-v0", "openai:http://127.0.0.1:8000/v1#my-model", n=100, k=4,
    ...                   output="runs/arith/rollouts.jsonl")          # doctest: +SKIP
    >>> report.pass_at_1, report.pass_at_k                             # doctest: +SKIP

The same as ``rlvr eval ENV_ID --policy SPEC -n N -k K``. Importing this package never imports
torch; ``hf:`` policies (from the trainer room) import it when they load their model.
"""

from rlvr.envs.evaluation.episode import UNSCORED_STATUSES, EpisodeRecord, run_episode
from rlvr.envs.evaluation.metrics import (
    component_means,
    k_values,
    mean_and_std,
    mean_pass_at_k,
    pass_at_k,
    pass_at_k_curve,
    status_counts,
)
from rlvr.envs.evaluation.policies import (
    Completion,
    OpenAIPolicy,
    Policy,
    PolicyCallFailed,
    PolicyError,
    PolicyOptions,
    PythonPolicy,
    SamplingParams,
    make_policy,
    policy_schemes,
    register_policy,
)
from rlvr.envs.evaluation.report import EvalReport, TaskResult, build_report
from rlvr.envs.evaluation.runner import EvalInterrupted, EvalRun, aevaluate, default_output, evaluate, make_env

__all__ = [
    "evaluate",
    "aevaluate",
    "EvalRun",
    "EvalReport",
    "EvalInterrupted",
    "TaskResult",
    "EpisodeRecord",
    "UNSCORED_STATUSES",
    "build_report",
    "run_episode",
    "make_env",
    "default_output",
    "pass_at_k",
    "mean_pass_at_k",
    "pass_at_k_curve",
    "k_values",
    "mean_and_std",
    "component_means",
    "status_counts",
    "Policy",
    "PolicyError",
    "PolicyCallFailed",
    "PolicyOptions",
    "SamplingParams",
    "Completion",
    "OpenAIPolicy",
    "PythonPolicy",
    "make_policy",
    "policy_schemes",
    "register_policy",
]
