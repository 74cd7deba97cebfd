"""Turn a Program into the zygote's request frame, and the zygote's answer into an ExecResult.

Pure functions (no processes): the request lists files and steps, the answer lists each step's
raw facts (exit status, signal, whether the supervisor hit a limit, usage); ``outcome`` decides
the status here, on the host, from facts the program cannot forge.
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass
from typing import Callable

from rlvr.sandbox.languages import Language
from rlvr.sandbox.limits import Limits
from rlvr.sandbox.program import Program
from rlvr.sandbox.result import ExecResult
from rlvr.sandbox.zygote.frames import encode_frame

#: Slack on top of the program's own limits before the host gives up on a silent worker.
HOST_GRACE_S = 15.0
STDERR_TAIL = 4096


@dataclass(frozen=True)
class Request:
    """A request frame plus what is needed to read its answer."""

    frame: bytes
    deadline_s: float
    compiles: bool


def step_limits(limits: Limits, step: str, lang: Language, nproc: Callable[[int], int]) -> dict:
    """The rlimit/supervision numbers the zygote applies to one step."""
    compiling = step == "compile"
    wall = limits.compile_time_limit_s if compiling else limits.time_limit_s
    return {
        "wall_s": wall,
        "cpu_s": max(1, int(wall + 0.999)) if compiling else limits.cpu_seconds,
        "memory_mb": limits.compile_memory_mb if compiling else limits.memory_mb,
        "memory_rlimit": "as" if compiling else lang.memory_rlimit,
        "stack_mb": limits.stack,
        "file_mb": max(limits.max_file_mb, 64) if compiling else limits.max_file_mb,
        "open_files": limits.max_open_files,
        "nproc": nproc(max(limits.max_processes, 32) if compiling else limits.max_processes),
        "output_bytes": limits.max_output_bytes,
    }


def build_request(
    program: Program, lang: Language, limits: Limits, env: dict[str, str], nproc: Callable[[int], int], artifact: bytes | None = None
) -> Request:
    """The frame that runs ``program`` (compile step skipped when ``artifact`` is given)."""
    blobs: list[bytes] = [program.source.encode("utf-8", "surrogateescape")]
    files = [{"path": lang.source_file, "blob": 0, "mode": 0o644}]
    for path, data in program.files.items():
        files.append({"path": path, "blob": len(blobs), "mode": 0o644})
        blobs.append(data)
    steps = []
    compiles = lang.compiled and artifact is None
    if compiles:
        steps.append({"name": "compile", "argv": lang.argv("compile", limits), "limits": step_limits(limits, "compile", lang, nproc)})
    elif artifact is not None:
        files.append({"path": lang.artifact, "blob": len(blobs), "mode": 0o755})
        blobs.append(artifact)
    run = {"name": "run", "argv": lang.argv("run", limits) + list(program.argv), "limits": step_limits(limits, "run", lang, nproc)}
    if lang.in_zygote:
        run.update(python=True, source_file=lang.source_file, argv=[lang.source_file, *program.argv])
    if program.stdin:
        run["stdin_blob"] = len(blobs)
        blobs.append(program.stdin)
    steps.append(run)
    meta = {"files": files, "steps": steps, "env": env, "disk_mb": limits.disk_mb, "source_blob": 0 if lang.in_zygote else None,
            "artifact": lang.artifact if compiles else None}
    deadline = sum(s["limits"]["wall_s"] for s in steps) + HOST_GRACE_S
    return Request(encode_frame(meta, blobs), deadline, compiles)


def outcome(meta: dict, blobs: list[bytes], lang: Language, limits: Limits, backend: str,
            oom_killed: bool = False) -> tuple[ExecResult, bytes | None]:
    """The ExecResult of an answered request, and the compiled artifact if one came back.

    ``oom_killed``: the host saw the worker's memory cgroup OOM-kill a process during the run.
    """
    if meta.get("error"):
        return ExecResult.sandbox_error(backend, meta["error"]), None
    steps = meta.get("steps") or []
    if not steps:
        return ExecResult.sandbox_error(backend, "the worker answered without running anything"), None
    facts = steps[-1]
    if oom_killed:
        facts = dict(facts, oom_kills=max(1, facts.get("oom_kills", 0)))
    stdout, stderr = blobs[facts["stdout_blob"]], blobs[facts["stderr_blob"]]
    status, detail = classify(facts, stderr, lang, limits)
    stage = facts["name"]
    if stage == "compile" and status != "sandbox_error":
        detail = f"compile step failed: {detail}"
    sig = facts.get("signal")
    result = ExecResult(
        status=status,
        exit_code=facts.get("exit_code"),
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        wall_s=round(float(facts.get("wall_s", 0.0)), 6),
        cpu_s=round(float(facts.get("cpu_s", 0.0)), 6),
        max_rss_mb=round(facts.get("max_rss_kb", 0) / 1024.0, 3),
        backend=backend,
        signal=_signal_name(sig) if sig else None,
        stage=stage,
        detail=detail,
        truncated=bool(facts.get("truncated")),
    )
    art = meta.get("artifact_blob")
    return result, (blobs[art] if art is not None else None)


def classify(facts: dict, stderr: bytes, lang: Language, limits: Limits) -> tuple[str, str]:
    """(status, detail) from one step's facts; the supervisor's own observations win over exit codes."""
    compiling = facts.get("name") == "compile"
    wall = limits.compile_time_limit_s if compiling else limits.time_limit_s
    memory = limits.compile_memory_mb if compiling else limits.memory_mb
    sig, code = facts.get("signal"), facts.get("exit_code")
    if facts.get("error"):
        return "sandbox_error", facts["error"]
    if facts.get("timed_out"):
        return "timeout", f"wall-clock limit of {wall:g} s reached"
    if facts.get("output_exceeded"):
        return "output_limit", f"output passed {limits.max_output_bytes} bytes"
    if sig == _signal.SIGXCPU or (sig == _signal.SIGKILL and facts.get("cpu_s", 0) >= limits.cpu_seconds):
        return "timeout", "CPU time limit reached"
    if sig == _signal.SIGXFSZ:
        return "output_limit", f"a file passed {limits.max_file_mb} MiB"
    if code == 0:
        return "ok", ""
    tail = stderr[-STDERR_TAIL:].decode("utf-8", "replace")
    near_cap = facts.get("max_rss_kb", 0) >= 0.9 * memory * 1024
    if facts.get("oom_kills"):
        return "memory_limit", "the run's processes together passed the worker's memory cap (OOM-killed)"
    if near_cap or any(m in tail for m in lang.oom_markers):
        return "memory_limit", f"memory limit of {memory} MiB reached"
    if sig == _signal.SIGKILL:
        return "killed", "ended by SIGKILL that the sandbox did not send for a limit"
    if sig:
        return "runtime_error", f"ended by {_signal_name(sig)}"
    return "runtime_error", f"exit code {code}"


def _signal_name(sig: int) -> str:
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


__all__ = ["Request", "build_request", "classify", "outcome", "step_limits"]
