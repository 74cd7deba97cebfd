"""The Docker image the ``docker`` backend runs: built locally, never pulled.

``rlvr sandbox build-image`` (and the docker backend, on first use) imports a tiny root
filesystem with ``docker import``: the sanitized /etc of ``rootfs``, empty mount points, and
symlinks matching the host's merged-/usr layout. At run time the host's /usr (interpreters,
compilers, libraries) and the loader cache are bind-mounted read-only; the labels on the image
say which. So the image costs a few KiB and a second to build, runs exactly the toolchain the
host has, and works on the local engine. For a remote engine (``DOCKER_HOST`` elsewhere), name
an image of your own that contains ``python3`` (``Sandbox("docker", image=..., binds=[])``).

The tag is a digest of the recipe, so building is idempotent: an existing tag is reused.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from typing import Any

from rlvr.errors import SandboxError
from rlvr.sandbox.rootfs import ETC_FILES, ETC_HOST_BINDS, system_python, usr_layout

log = logging.getLogger(__name__)

REPOSITORY = "rlvr-sandbox"
LABEL_BINDS = "rlvr.sandbox.binds"
LABEL_PYTHON = "rlvr.sandbox.python"
MOUNT_POINTS = ("usr", "etc", "tmp", "work", "dev", "proc", "sys", "run", "var", "var/tmp")


def host_binds() -> list[str]:
    """Host paths the image expects bind-mounted read-only at the same place."""
    binds = ["/usr"]
    binds += [f"/{name}" for name, kind in usr_layout() if kind == "dir"]
    binds += [p for p in ETC_HOST_BINDS if os.path.exists(p)]
    python = os.path.realpath(system_python())
    if not python.startswith("/usr/"):
        binds.append(os.path.dirname(os.path.dirname(python)))
    return binds


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int = 0o755, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname, info.size = kind, mode, 0, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in MOUNT_POINTS:
            add(d, tarfile.DIRTYPE, 0o1777 if d in ("tmp", "var/tmp") else 0o755)
        for name, kind in usr_layout():
            if kind.startswith("link:"):
                add(name, tarfile.SYMTYPE, 0o777, link=kind[5:])
            else:
                add(name, tarfile.DIRTYPE)
        for name, text in ETC_FILES.items():
            add(f"etc/{name}", tarfile.REGTYPE, 0o644, text.encode())
        for path in ETC_HOST_BINDS:  # mount points for the host files bound at run time
            if os.path.isdir(path):
                add(path.lstrip("/"), tarfile.DIRTYPE)
            elif os.path.exists(path):
                add(path.lstrip("/"), tarfile.REGTYPE, 0o644)
    return buf.getvalue()


def recipe() -> tuple[bytes, dict[str, str]]:
    """(root filesystem tarball, image labels) of the default image."""
    labels = {LABEL_BINDS: json.dumps(host_binds()), LABEL_PYTHON: system_python()}
    return _rootfs_tar(), labels


def default_tag() -> str:
    """``rlvr-sandbox:<digest of the recipe>``."""
    tar, labels = recipe()
    digest = hashlib.sha256(tar + json.dumps(labels, sort_keys=True).encode()).hexdigest()[:12]
    return f"{REPOSITORY}:{digest}"


def image_exists(client: Any, tag: str) -> bool:
    """Whether the engine has ``tag`` locally."""
    import docker

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_image(client: Any, tag: str | None = None, force: bool = False) -> tuple[str, bool]:
    """Build the default image unless it exists; returns (tag, built_now)."""
    tag = tag or default_tag()
    if not force and image_exists(client, tag):
        return tag, False
    tar, labels = recipe()
    repo, _, version = tag.rpartition(":")
    changes = [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
    try:
        client.api.import_image_from_data(tar, repository=repo or tag, tag=version or "latest", changes=changes)
    except Exception as e:  # the engine's own message says what is wrong (permissions, disk)
        raise SandboxError(f"docker could not import the sandbox image {tag}: {e}") from e
    log.info("built docker image %s", tag)
    return tag, True


def image_config(client: Any, tag: str) -> tuple[list[str], str | None]:
    """(host paths to bind read-only, python path) that ``tag``'s labels ask for."""
    labels = client.images.get(tag).labels or {}
    binds = json.loads(labels[LABEL_BINDS]) if LABEL_BINDS in labels else []
    return binds, labels.get(LABEL_PYTHON)


__all__ = ["REPOSITORY", "build_image", "default_tag", "host_binds", "image_config", "image_exists", "recipe"]
