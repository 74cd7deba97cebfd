"""Asynchronous (pipelined) training: generation overlaps optimisation with bounded staleness ``k``.

A generator process plays whole groups with the newest weights it has (``generator.py``), every
token tagged with the policy version that sampled it and its behaviour log-prob
(``versioned.py``); weights travel through shared memory after every optimiser step and are
picked up between decode steps (``weights.py``); the trainer takes groups at most ``k`` versions
old and regenerates staler ones (``staleness.py``, ``pipeline.py``). With a vLLM server
(``server.py``) a generator thread sends the requests and the weights are pushed to the server
after every step while they flow. ``checks.py`` says which configurations may run asynchronously.
"""

from rlvr.trainer.asynchronous.pipeline import AsyncGenerator, TakeStats, step_metrics
from rlvr.trainer.asynchronous.staleness import NOT_SAMPLED, group_staleness, histogram, stale_groups
from rlvr.trainer.asynchronous.weights import SharedWeights, WeightFollower

__all__ = ["AsyncGenerator", "TakeStats", "step_metrics", "SharedWeights", "WeightFollower", "NOT_SAMPLED",
           "group_staleness", "histogram", "stale_groups"]
