"""Environments from other libraries, each adapter one module registering its ids when its library is installed.

``reasoning_gym``: every reasoning-gym dataset as ``reasoning_gym/<dataset>-v0``; ``verifiers_env``:
installed PrimeIntellect ``verifiers`` environments as ``verifiers/<env-id>-v0``; ``openenv``:
OpenEnv environment servers as ``openenv:URL``. None imports its library at ``import rlvr.envs``.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

#: Adapter modules whose ``register_all()`` runs on ``import rlvr.envs``.
ADAPTERS = ["rlvr.envs.adapters.reasoning_gym", "rlvr.envs.adapters.verifiers_env", "rlvr.envs.adapters.openenv"]


def register_adapters() -> None:
    """Register every adapter's environments; a failing adapter is logged and skipped."""
    for name in ADAPTERS:
        try:
            importlib.import_module(name).register_all()
        except Exception:
            log.warning("environment adapter %s failed to register", name, exc_info=True)


__all__ = ["ADAPTERS", "register_adapters"]
