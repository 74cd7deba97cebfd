"""Sandbox backends. A new backend is one module here whose class carries ``@register_backend``;
the registry imports every module of this folder when it is first used."""

from __future__ import annotations

from rlvr.sandbox.backends.base import BACKENDS, Backend, Isolation, backend_class, backend_names, register_backend

__all__ = ["BACKENDS", "Backend", "Isolation", "backend_class", "backend_names", "register_backend"]
