"""The ``docker`` backend: warm containers, one zygote each, on the local engine or ``DOCKER_HOST``.

Each worker is one long-lived container: no network, read-only root, every capability dropped
but the ones its zygote needs (``CAPS``), ``no-new-privileges``, the engine's default seccomp
profile, memory/pids/CPU caps. Requests and answers travel over the container's attached
stdin/stdout, so a run costs a fork inside the container, not a ``docker run`` (~0.5 s) or
``docker exec`` (~0.1 s). Inside, every run gets new mount, pid, IPC and network namespaces,
one size-capped tmpfs on /work, /tmp, /var/tmp and /dev/shm, its own /proc and /dev/mqueue,
and runs as a uid of its own with no capability and a
seccomp filter denying keyrings and user namespaces: nothing one run leaves (files, processes,
sockets, IPC objects, pid counts) is visible to the next. Where the engine forbids the mounts
(AppArmor's docker-default profile), workers fall back, with a warning, to one shared world
per container that is killed and emptied after each run.
With ``stdin_once`` and ``auto_remove``, a container whose host process died stops and vanishes
by itself; stale ones from crashed hosts are also removed when a backend starts.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from functools import lru_cache
from typing import Any

from rlvr.errors import ConfigError, DependencyError, SandboxError
from rlvr.sandbox.backends.base import Backend, Isolation, register_backend
from rlvr.sandbox.backends.network import network_mode
from rlvr.sandbox.languages import PYTHON_PRELOAD
from rlvr.sandbox.limits import Limits
from rlvr.sandbox.rootfs import program_env
from rlvr.sandbox.workers import Worker, WorkerError
from rlvr.sandbox.zygote import launch_argv
from rlvr.sandbox.zygote.frames import decode_frame

log = logging.getLogger(__name__)

# What the zygote (root in the container) needs: new namespaces and mounts per run (SYS_ADMIN),
# the run's loopback (NET_ADMIN, on the container's own network namespaces only), files handed
# to the run's uid and cleaned after it (CHOWN, DAC_OVERRIDE, FOWNER), the uid switch (SETUID,
# SETGID) and killing what the run left (KILL). The program itself holds none of them.
CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "NET_ADMIN", "SETGID", "SETUID", "SYS_ADMIN"]

LABEL = "rlvr.sandbox"
READY_TIMEOUT_S = 60.0


def _client(docker_host: str | None = None) -> Any:
    try:
        import docker
    except ImportError:
        raise DependencyError("docker", "docker") from None
    client = docker.DockerClient(base_url=docker_host, timeout=60, max_pool_size=64) if docker_host \
        else docker.from_env(timeout=60, max_pool_size=64)
    _widen_pool_lru(client)
    return client


def _widen_pool_lru(client: Any) -> None:
    """Give docker-py's unix-socket adapter an LRU of 1024 connection pools instead of 25.

    docker-py keys those pools by request URL and closes the one it evicts even while another
    thread is using it ("'NoneType' object has no attribute 'qsize'" when 16 workers start at
    once, measured in the sandbox soak). Its ``num_pools`` option would fix that but is ignored
    for unix sockets (an operator-precedence slip in ``APIClient.__init__``, docker 7.1), so the
    LRU is replaced here; where the adapter looks different, nothing is changed.
    """
    adapter = getattr(client.api, "_custom_adapter", None)
    pools = getattr(adapter, "pools", None)
    if pools is not None and type(pools).__name__ == "RecentlyUsedContainer":
        adapter.pools = type(pools)(1024, dispose_func=lambda p: p.close())


@lru_cache(maxsize=4)
def _probe(docker_host: str | None) -> tuple[bool, str]:
    try:
        client = _client(docker_host)
        client.ping()
        version = client.version().get("Version", "?")
    except DependencyError as e:
        return False, str(e)
    except Exception as e:  # no engine, no permission, wrong DOCKER_HOST: say which
        where = docker_host or os.environ.get("DOCKER_HOST") or "the default socket"
        return False, f"no Docker engine answers at {where}: {type(e).__name__}: {str(e)[:160]}"
    from rlvr.sandbox.image import default_tag, image_exists

    tag = default_tag()
    state = "present" if image_exists(client, tag) else "built on first use (or: rlvr sandbox build-image)"
    where = docker_host or os.environ.get("DOCKER_HOST") or "the local socket"
    return True, f"engine {version} at {where}; image {tag} {state}"


class DockerWorker(Worker):
    """A container running the zygote; frames over its attached stdin/stdout."""

    def __init__(self, client: Any, create: dict[str, Any], name: str = "docker worker") -> None:
        self.name = name
        self._closed = False
        self._buf = bytearray()  # demultiplexed stdout bytes not yet consumed
        self._raw_buf = bytearray()
        try:
            self._container = client.containers.get(client.api.create_container(**create)["Id"])
        except Exception as e:
            raise WorkerError(f"docker could not create a worker container: {e}") from None
        try:
            sock = client.api.attach_socket(self._container.id, params={"stdin": 1, "stdout": 1, "stream": 1})
            self._sock = getattr(sock, "_sock", sock)
            self._container.start()
            meta, _ = self._read_frame(time.monotonic() + READY_TIMEOUT_S)
        except Exception as e:
            logs = self._logs()
            self.close()
            raise WorkerError(f"{name} did not start: {e}{logs}") from None
        if not meta.get("ready"):
            self.close()
            raise WorkerError(f"{name} sent {meta!r} instead of its ready message")
        self.fallback_reason = meta.get("fallback_reason")

    @property
    def alive(self) -> bool:
        return not self._closed

    def call(self, frame: bytes, timeout_s: float) -> tuple[dict, list[bytes]]:
        deadline = time.monotonic() + timeout_s
        try:
            self._sock.settimeout(max(0.001, timeout_s))
            self._sock.sendall(frame)
        except OSError as e:
            self._closed = True
            raise WorkerError(f"{self.name} is gone ({e})") from None
        meta, blobs = self._read_frame(deadline)
        self.runs += 1
        return meta, blobs

    def _fill(self, deadline: float) -> None:
        """Read more of the engine's multiplexed stream into ``_buf`` (stdout frames only)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise WorkerError(f"{self.name} did not answer in time")
        self._sock.settimeout(left)
        try:
            chunk = self._sock.recv(1 << 20)
        except socket.timeout:
            raise WorkerError(f"{self.name} did not answer in time") from None
        except OSError as e:
            raise WorkerError(f"{self.name} connection failed: {e}") from None
        if not chunk:
            raise WorkerError(f"{self.name} exited{self._logs()}")
        self._raw_buf += chunk
        while len(self._raw_buf) >= 8:  # engine framing: stream id, 3 zero bytes, big-endian length
            size = int.from_bytes(self._raw_buf[4:8], "big")
            if len(self._raw_buf) < 8 + size:
                break
            if self._raw_buf[0] == 1:
                self._buf += self._raw_buf[8 : 8 + size]
            del self._raw_buf[: 8 + size]

    def _read_frame(self, deadline: float) -> tuple[dict, list[bytes]]:
        def read_exact(n: int) -> bytes:
            while len(self._buf) < n:
                self._fill(deadline)
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out

        try:
            meta, blobs = decode_frame(read_exact)
        except WorkerError:
            self._closed = True
            raise
        except ValueError as e:
            self._closed = True
            raise WorkerError(f"{self.name} broke the protocol: {e}") from None
        return meta, blobs

    def _logs(self) -> str:
        try:
            tail = self._container.logs(stdout=False, stderr=True, tail=20).decode("utf-8", "replace").strip()
        except Exception:  # the container may already be gone: the logs are a courtesy
            return ""
        return f"; its log ends: {tail[-1500:]}" if tail else ""

    def close(self) -> None:
        if getattr(self, "_container", None) is None:
            return
        self._closed = True
        try:
            self._sock.close()
        except (AttributeError, OSError):
            pass
        try:
            self._container.remove(force=True)
        except Exception as e:  # already removed by auto_remove: nothing left to do
            log.debug("removing %s: %s", self._container.short_id, e)
        self._container = None


class DockerBackend(Backend):
    """Warm containers on a Docker engine (local or ``DOCKER_HOST``)."""

    name = "docker"
    rank = 20
    options = ("image", "docker_host", "binds", "python", "fresh_network")

    def __init__(self, limits: Limits, image: str | None = None, docker_host: str | None = None,
                 binds: list[str] | None = None, python: str | None = None, fresh_network: bool = False) -> None:
        super().__init__(limits)
        self.netns = network_mode(fresh_network)
        from rlvr.sandbox.image import build_image, image_config

        self.client = _client(docker_host)
        try:
            self.client.ping()
        except Exception as e:
            raise SandboxError(f"no Docker engine answers ({docker_host or os.environ.get('DOCKER_HOST') or 'default socket'}): {e}") from None
        if image is None:
            image, built = build_image(self.client)
            if built:
                log.info("built the sandbox image %s", image)
        try:
            label_binds, label_python = image_config(self.client, image)
        except Exception as e:
            raise ConfigError("image", f"docker image {image!r} is not available on the engine ({e})", "build it with `rlvr sandbox build-image` or pull it") from None
        self.image = image
        self.binds = label_binds if binds is None else list(binds)
        self.python = python or label_python or "python3"
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        self._warned = False
        _remove_stale_containers(self.client, self._host)

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        return _probe(None)

    @property
    def isolation(self) -> Isolation:
        return Isolation(
            host_files_hidden=True, network=True, signals=True, private_tmp=True, disk_quota=True, total_memory=True,
            summary="container per worker: no network, read-only root, cgroup caps, seccomp; per-run pid, mount, IPC and network "
                    "namespaces and tmpfs; runs as a fresh uid",
        )

    def start_worker(self) -> Worker:
        lim = self.limits
        uid = random.randrange(2_000_000, 2_100_000_000)
        cfg = {"strategy": "pidns", "uid": uid, "gid": uid, "stage_dir": "/run", "disk_mb": lim.disk_mb, "netns": self.netns,
               "mounts": [["/work", 0o700], ["/tmp", 0o1777], ["/var/tmp", 0o1777], ["/dev/shm", 0o1777]],
               "tmpdir": "/tmp", "preload": list(PYTHON_PRELOAD), "oom_counter": "container",
               "prepare_ahead": "never",  # the container's CPU quota is shared with the run: never compete with it
               # Where the engine's security profile (AppArmor's docker-default) forbids the mounts, a
               # shared container world per worker, emptied after each run (weaker: see the README).
               "fallback": {"strategy": "uid", "workdir": "/work", "wipe_dirs": ["/tmp", "/dev/shm", "/var/tmp", "/dev/mqueue"],
                            "wipe_all": True, "sysv_cleanup": True}}
        import docker

        memory = self.worker_memory_bytes() >> 20
        tmpfs_opts = f"rw,exec,nosuid,nodev,size={lim.disk_mb}m"
        host_config = self.client.api.create_host_config(
            auto_remove=True, network_mode="none", read_only=True,
            cap_drop=["ALL"], cap_add=CAPS, security_opt=["no-new-privileges"],
            mem_limit=f"{memory}m", memswap_limit=f"{memory}m",
            pids_limit=max(lim.max_processes, 32) + 16, nano_cpus=int(lim.cpus * 1e9),
            tmpfs={"/work": tmpfs_opts + ",mode=0711", "/tmp": tmpfs_opts + ",mode=1777", "/var/tmp": tmpfs_opts + ",mode=1777"},
            shm_size=f"{lim.disk_mb}m",
            mounts=[docker.types.Mount(p, p, type="bind", read_only=True) for p in self.binds],
        )
        create = dict(
            image=self.image, command=launch_argv(self.python, cfg),
            stdin_open=True, tty=False, detach=False,  # detach=False is what sets StdinOnce: EOF when we detach
            hostname="sandbox", user="0:0", working_dir="/", environment=program_env(),
            labels={LABEL: "1", f"{LABEL}.host": self._host, f"{LABEL}.pid": str(os.getpid())},
            host_config=host_config,
        )
        worker = DockerWorker(self.client, create)
        if worker.fallback_reason and not self._warned:
            self._warned = True
            log.warning("docker workers cannot give each run its own namespaces here (%s): runs share their container's "
                        "pid and network namespaces, emptied between runs", worker.fallback_reason)
        return worker


def _remove_stale_containers(client: Any, host: str) -> None:
    """Remove worker containers whose host process (on this machine) no longer exists."""
    try:
        for c in client.containers.list(all=True, filters={"label": f"{LABEL}.host={host}"}):
            pid = int(c.labels.get(f"{LABEL}.pid", "0") or 0)
            if pid and not _pid_alive(pid):
                c.remove(force=True)
    except Exception as e:  # housekeeping only: never stop a sandbox from starting
        log.debug("stale container cleanup: %s", e)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


register_backend(DockerBackend)
