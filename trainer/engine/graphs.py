"""Capture a fixed-shape decode step as a CUDA graph, so a step costs one launch instead of hundreds.

Decoding a small model is bound by Python and kernel-launch overhead, not by the GPU: a 24-layer
forward issues several hundred kernels per token. A CUDA graph records them once and replays them
with one call. The step must read and write only tensors at fixed addresses (the engine's
``SlotState``) and must not synchronise with the host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)

# Warm-up runs before capture (lazy initialisation in cuBLAS/cuDNN must not happen while capturing).
WARMUP_STEPS = 2


class CapturedStep:
    """A step function recorded as a CUDA graph; ``replay()`` runs it again on the live tensors.

    Capturing runs ``step`` ``WARMUP_STEPS`` times for real first (on a side stream), so the caller
    must accept those as genuine steps; ``warmup_steps`` says how many ran.
    """

    def __init__(self, step: Callable[[], None], pool: object | None = None) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_STEPS):
                step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            step()
        self.warmup_steps = WARMUP_STEPS

    @property
    def pool(self) -> object:
        """The graph's memory pool, shareable with further captures."""
        return self.graph.pool()

    def replay(self) -> None:
        """Run the recorded step once."""
        self.graph.replay()


__all__ = ["CapturedStep", "WARMUP_STEPS"]
