"""rlvr.trainer.policies: the trainer's generation backends as ``rlvr eval`` policies.

``BackendPolicy`` turns any token-level generation backend (the rollout engine,
``model.generate``, a vLLM server) into a :class:`rlvr.envs.evaluation.Policy`, so ``rlvr eval``
can run whatever the trainer generates with. ``hf:PATH`` and ``vllm:URL#TOKENIZER`` are
registered into the policy registry through the ``rlvr.policies`` entry-point group (a lazy
``"module:attr"`` string), so ``rlvr.envs`` imports neither torch nor this package until such a
spec is used. Importing this package imports no torch.
"""

from rlvr.trainer.policies.backend import BackendPolicy

__all__ = ["BackendPolicy"]
