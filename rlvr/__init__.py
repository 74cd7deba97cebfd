"""rlvr: reinforcement learning from verifiable rewards.

Rooms: :mod:`rlvr.verifiers` (score completions), :mod:`rlvr.sandbox` (run untrusted code),
:mod:`rlvr.envs` (Gymnasium text environments) and :mod:`rlvr.trainer` (policy-gradient trainer).
Importing ``rlvr`` itself is cheap: no room is imported until it is used.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("rlvr")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
