"""rlvr.sandbox: run untrusted, model-written programs under hard limits, at near-fork cost.

    from rlvr.sandbox import Sandbox, Program, Limits
    with Sandbox("auto", Limits(time_limit_s=2, memory_mb=256)) as sb:
        result = sb.run(Program("python", "print(sum(map(int, input().split())))", stdin="1 2"))
        result.status, result.stdout      # ('ok', '3\\n')

Backends (``probe_backends()`` says which work here; ``auto`` takes the strongest):
``bwrap`` (bubblewrap namespaces, fresh pid/mount/IPC namespaces per run), ``docker`` (warm
containers on the local engine or ``DOCKER_HOST``; build the image with
``rlvr sandbox build-image``) and ``local`` (rlimits and a dedicated uid only: the weakest).

A new backend is one module in ``sandbox/backends/`` whose class carries
``@register_backend``; a new language is one ``register_language(Language(...))`` line in
``languages.py``.
"""

from rlvr.sandbox.languages import Language, get_language, language_names, register_language
from rlvr.sandbox.limits import Limits
from rlvr.sandbox.program import Program
from rlvr.sandbox.result import STATUSES, ExecResult
from rlvr.sandbox.sandbox import Sandbox, default_backend, probe_backends

__all__ = [
    "ExecResult",
    "Language",
    "Limits",
    "Program",
    "STATUSES",
    "Sandbox",
    "default_backend",
    "get_language",
    "language_names",
    "probe_backends",
    "register_language",
]
