"""Policies for `rlvr eval`: ``openai:BASE_URL#MODEL``, ``python:module:fn`` here; ``hf:PATH`` and
``vllm:URL#TOKENIZER`` from the trainer room (its ``policies`` package, found through the
``rlvr.policies`` entry-point group).

Each kind is one module that registers its spec scheme at its bottom; none here imports torch.
"""

from rlvr.envs.evaluation.policies.base import (
    Completion,
    Message,
    Policy,
    PolicyCallFailed,
    PolicyError,
    PolicyOptions,
    SamplingParams,
    estimate_prompt_tokens,
    estimate_tokens,
)
from rlvr.envs.evaluation.policies.registry import POLICIES, make_policy, policy_schemes, register_policy

# Imported for their register_policy() lines.
from rlvr.envs.evaluation.policies import openai_compat, python_fn  # noqa: E402,F401  isort: skip
from rlvr.envs.evaluation.policies.openai_compat import OpenAIPolicy  # noqa: E402
from rlvr.envs.evaluation.policies.python_fn import PythonPolicy  # noqa: E402

__all__ = [
    "Completion",
    "Message",
    "Policy",
    "PolicyCallFailed",
    "PolicyError",
    "PolicyOptions",
    "SamplingParams",
    "estimate_tokens",
    "estimate_prompt_tokens",
    "make_policy",
    "policy_schemes",
    "register_policy",
    "POLICIES",
    "OpenAIPolicy",
    "PythonPolicy",
]
