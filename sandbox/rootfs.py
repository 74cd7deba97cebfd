"""What a sandboxed program sees of the system: host runtime paths (read-only) and a sanitized /etc.

Decision (pinned by tests): under bwrap and Docker the host's ``/etc`` is never visible. The
sandbox gets its own ``/etc/passwd`` and ``/etc/group`` listing only ``root``, ``nobody`` and
``sandbox``, a loopback-only ``/etc/hosts``, plus the two host files the dynamic loader and
Debian's alternatives need (``ld.so.cache``, ``alternatives/``, which name no users or secrets).
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_USER = "sandbox"

ETC_FILES: dict[str, str] = {
    "passwd": (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}:sandboxed program:/work:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ),
    "group": f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n",
    "hosts": "127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost ip6-loopback\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    "hostname": "sandbox\n",
}

#: Host files under /etc that programs need and that hold nothing about the host's users.
ETC_HOST_BINDS = ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime")

#: Top-level directories that, on a merged-/usr system, are symlinks into /usr.
USR_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

PATH = "/usr/local/bin:/usr/bin:/bin"


def program_env() -> dict[str, str]:
    """The whole environment a sandboxed program starts with (nothing from the host's)."""
    return {
        "PATH": PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "USER": SANDBOX_USER,
        "LOGNAME": SANDBOX_USER,
        "SHELL": "/bin/sh",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def usr_layout() -> list[tuple[str, str]]:
    """How the host's top-level runtime dirs relate to /usr: [(name, "link:<target>" | "dir")]."""
    out = []
    for name in USR_LINKS:
        p = Path("/") / name
        if p.is_symlink():
            out.append((name, "link:" + os.readlink(p)))
        elif p.is_dir():
            out.append((name, "dir"))
    return out


@lru_cache(maxsize=1)
def system_python() -> str:
    """The interpreter sandboxed Python runs on: /usr/bin/python3, else this venv's base interpreter.

    It has to live under /usr (or a path the backend binds) so that it exists inside the sandbox.
    """
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else (shutil.which("python3") or sys.executable)


__all__ = ["ETC_FILES", "ETC_HOST_BINDS", "PATH", "SANDBOX_GID", "SANDBOX_UID", "program_env", "system_python", "usr_layout"]
