"""Soak: thousands of mixed Python, C and JavaScript programs, hostile and benign, 16 in flight per isolating backend.

Every benign program must give its exact answer; hostile ones may end any way but
``sandbox_error``; afterwards no process, temp dir, memory cgroup, container or key of the
soak is left, and the memory of the host process and of the workers stays flat. ``RLVR_SOAK_N``
sets the number of programs per backend (default 600, what fits CI on 2 cores in a few
minutes; the figures in the sandbox README come from 5,000). One JSON line of figures per backend
is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rlvr.sandbox import Limits, Program, Sandbox
from rlvr.sandbox.cgroups import _own_memory_cgroup

from .conftest import alive_with, require

N = int(os.environ.get("RLVR_SOAK_N", "600"))
IN_FLIGHT = 16
CHUNKS = 8
# Benign programs get a generous wall clock: 16 in flight on 2 cores, next to CPU burners, is
# slow by design. Hostile ones get 1.5 s of wall clock and CPU, so loops end quickly. (Node 20
# under a 256 MiB data limit hangs instead of failing, before these changes too: 512 here.)
LIMITS = Limits(time_limit_s=30, memory_mb=512, max_processes=32, max_output_bytes=20_000, disk_mb=16, compile_time_limit_s=60)
HOSTILE_LIMITS = LIMITS.replace(time_limit_s=1.5, cpu_time_s=1.5)

C_SUM = "#include <stdio.h>\nint main(){long a,b;if(scanf(\"%ld %ld\",&a,&b)!=2)return 3;printf(\"%ld\\n\",a+b+K);}\n"
JS_SUM = "const [a,b]=require('fs').readFileSync(0,'utf8').trim().split(' ').map(Number);console.log(a*b)"


def hostile(token: str) -> list[tuple[str, str]]:
    """(language, source) of programs a reward-maximising policy might try."""
    daemon = f"import subprocess,sys\nsubprocess.Popen([sys.executable,'-c','import time;time.sleep(600)','{token}'],start_new_session=True)\nprint(1)"
    return [
        ("python", "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"),
        ("python", "a=[]\nwhile True: a.append(bytearray(10**7))"),
        ("python", "while True: pass"),
        ("python", "while True: print('x'*1000)"),
        ("python", daemon),
        ("python", f"import ctypes\nl=ctypes.CDLL(None)\nl.syscall(248,b'user',b'{token}',b'v',1,-4)\nopen('/tmp/{token}','w').write('x')\nprint(1)"),
        ("python", "import os,signal\ntry: os.kill(-1, signal.SIGKILL)\nexcept OSError: pass\nos.kill(1, signal.SIGKILL)"),
        ("python", "import socket\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen()\nc=socket.create_connection(s.getsockname());a,_=s.accept();a.close();c.close()\nprint(s.getsockname()[1])"),
        ("c", "#include <stdlib.h>\n#include <string.h>\nint main(){for(;;){char*p=malloc(1<<24);if(p)memset(p,1,1<<24);}}"),
        ("c", "int main(){int *p=0;return *p;}"),
        ("c", "#include <unistd.h>\n#include <sys/stat.h>\nint main(){unlink(\"main\");symlink(\"/proc/self/pagemap\",\"main\");return 1;}"),
        ("javascript", "while(true){}"),
        ("javascript", "const a=[];for(;;)a.push(new Array(1e6).fill(1))"),
    ]


def mix(n: int, token: str, seed: int = 5) -> list[tuple[Program, str | None]]:
    """(program, expected stdout for a benign one, None for a hostile one), ~15% hostile."""
    rng = random.Random(seed)
    bad = hostile(token)
    items: list[tuple[Program, str | None]] = []
    for i in range(n):
        roll = rng.random()
        a, b = rng.randrange(10**6), rng.randrange(10**6)
        if roll < 0.15:
            lang, src = rng.choice(bad)
            items.append((Program(lang, src), None))
        elif roll < 0.55:
            items.append((Program("python", f"a,b=map(int,input().split())\nprint(a-b)", stdin=f"{a} {b}"), f"{a - b}\n"))
        elif roll < 0.80:
            k = rng.randrange(8)  # a few distinct sources: compiles and cache hits both happen
            items.append((Program("c", C_SUM.replace("K", str(k)), stdin=f"{a} {b}"), f"{a + b + k}\n"))
        else:
            items.append((Program("javascript", JS_SUM, stdin=f"{a} {b}"), f"{a * b}\n"))
    return items


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _container_memory_mb(client) -> float:
    total = 0
    for c in client.containers.list(filters={"label": f"rlvr.sandbox.pid={os.getpid()}"}):
        for path in (f"/sys/fs/cgroup/memory/docker/{c.id}/memory.usage_in_bytes", f"/sys/fs/cgroup/system.slice/docker-{c.id}.scope/memory.current"):
            try:
                total += int(Path(path).read_text())
                break
            except OSError:
                continue
    return total / (1 << 20)


def _keys() -> str:
    try:
        return Path("/proc/keys").read_text()
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.parametrize("backend", [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)])
def test_soak_mixed_programs_16_in_flight_leave_nothing_and_stay_flat(backend):
    require(backend)
    token = "rlvr-soak-" + os.urandom(5).hex()
    items = mix(N, token)
    base, _ = _own_memory_cgroup()
    before_cgroups = set(base.glob(f"rlvr-sbx-{os.getpid()}-*")) if base is not None else set()
    keys_before = _keys()
    client = None
    if backend == "docker":
        import docker

        client = docker.from_env()
    before_containers = {c.id for c in client.containers.list(all=True, filters={"label": f"rlvr.sandbox.pid={os.getpid()}"})} if client else set()
    results, memory = [], []
    t0 = time.monotonic()
    with Sandbox(backend, LIMITS, concurrency=IN_FLIGHT) as sb:
        sb.warmup()
        size = -(-len(items) // CHUNKS)
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            with ThreadPoolExecutor(IN_FLIGHT) as ex:
                results += list(ex.map(lambda it: sb.run(it[0], limits=LIMITS if it[1] is not None else HOSTILE_LIMITS), chunk))
            workers = _rss_mb(_descendants(os.getpid()))  # this process and its bwrap workers
            memory.append(round(workers + (_container_memory_mb(client) if client else 0.0), 1))
        hits = sb.compile_cache.hits
    seconds = time.monotonic() - t0
    statuses = Counter(r.status for r in results)
    figures = {"soak": backend, "programs": len(items), "in_flight": IN_FLIGHT, "seconds": round(seconds, 1),
               "per_s": round(len(items) / seconds, 1), "statuses": dict(statuses), "compile_cache_hits": hits, "memory_mb": memory}
    print(json.dumps(figures))

    failed = [(i, r.status, r.detail, r.stdout[:80]) for i, ((_, want), r) in enumerate(zip(items, results))
              if want is not None and (r.status, r.stdout) != ("ok", want)]
    assert not failed, failed[:10]
    broken = [(i, r.detail) for i, ((_, want), r) in enumerate(zip(items, results)) if want is None and r.status == "sandbox_error"]
    assert not broken, broken[:10]
    assert alive_with(token) == [], "a process outlived its run"
    assert not list(Path("/tmp").glob(f"*{token}*")) and not list(Path("/dev/shm").glob(f"*{token}*")), "a temp file reached the host"
    assert base is None or set(base.glob(f"rlvr-sbx-{os.getpid()}-*")) == before_cgroups, "memory cgroups leaked"
    assert token not in _keys() and _keys().count("\n") <= keys_before.count("\n"), "a key outlived its run"
    if client is not None:
        after = {c.id for c in client.containers.list(all=True, filters={"label": f"rlvr.sandbox.pid={os.getpid()}"})}
        assert after <= before_containers, "containers leaked"
    # Flat: the last sample is within 25% (or 64 MiB) of the one after the first chunk.
    assert memory[-1] <= max(memory[0] * 1.25, memory[0] + 64), memory
