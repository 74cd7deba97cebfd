"""The warm worker that runs *inside* a sandbox: a zygote forking one fresh run per request.

The modules of this package use only the standard library and relative imports, because the
same files run in two places: the host imports them as ``rlvr.sandbox.zygote`` (for the frame
codec), and every worker runs them, shipped as source on its command line, under the system
interpreter inside bwrap, a Docker container or a plain process (``launch_argv``). The
package is the whole in-sandbox side; read ``server`` for the process tree, ``strategies``
for how runs are contained, ``step`` for how one program is run and watched.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

#: Modules in load order (each imports only earlier ones).
MODULES = ("frames", "linux", "seccomp", "strategies", "step", "server")
PACKAGE = "rlvr_zygote"

# Loads the shipped modules as the package ``rlvr_zygote`` and starts the server.
BOOTSTRAP = (
    "import sys,types,json\n"
    f"p=types.ModuleType({PACKAGE!r});p.__path__=[];sys.modules[{PACKAGE!r}]=p\n"
    "for n,s in json.loads(sys.argv[2]):\n"
    f" m=types.ModuleType({PACKAGE!r}+'.'+n);m.__package__={PACKAGE!r};sys.modules[m.__name__]=m;setattr(p,n,m)\n"
    f" exec(compile(s,{PACKAGE!r}+'/'+n+'.py','exec'),m.__dict__)\n"
    "p.server.main(json.loads(sys.argv[1]))\n"
)


@lru_cache(maxsize=1)
def _sources() -> str:
    here = Path(__file__).parent
    return json.dumps([[name, (here / f"{name}.py").read_text(encoding="utf-8")] for name in MODULES])


def launch_argv(python: str, cfg: dict) -> list[str]:
    """The command that starts a zygote with configuration ``cfg`` under interpreter ``python``."""
    return [python, "-I", "-c", BOOTSTRAP, json.dumps(cfg), _sources()]


__all__ = ["BOOTSTRAP", "MODULES", "launch_argv"]
