"""Sandbox backends. Each module registers its backend at import; list new ones here."""

from __future__ import annotations

import importlib

from rlvr.sandbox.backends.base import Backend, Isolation, backend_class, backend_names, register_backend

BACKEND_MODULES = [
    "rlvr.sandbox.backends.local",
    "rlvr.sandbox.backends.bwrap",
    "rlvr.sandbox.backends.docker",
]

for _module in BACKEND_MODULES:
    importlib.import_module(_module)

__all__ = ["Backend", "Isolation", "backend_class", "backend_names", "register_backend", "BACKEND_MODULES"]
