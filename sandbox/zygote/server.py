"""The zygote's main loop and the per-request runner.

    zygote      never reads a request, so no run's data ever lives in the memory that later
     |          runs are forked from. Forks the next runner as soon as the current one has
     |          taken its request when a CPU is idle (its preparation then costs the next run
     |          nothing), else once the current one has exited (on busy cores, preparing
     |          during a run measured slower: it competes with the run it is meant to hide).
     R runner   prepares the run's world before any request exists (``Strategy.prepare``).
     S          supervisor: R itself. With ``pidns``, R is cloned straight into the run's new
                namespaces as their pid 1 (or, where that syscall is unknown, R unshares them
                and forks S). Reads one request, writes its files, runs its steps, cleans,
                answers, exits.

Exit codes of R (and S): 0 answered, 4 input ended (the host closed the worker), anything else:
unknown state, so the zygote exits and the host replaces the whole worker.
"""

from __future__ import annotations

import os
import select
import signal
import sys

from . import linux, seccomp
from .frames import decode_frame, encode_frame, fd_reader, write_all
from .step import record_hard_limits, run_step
from .strategies import STRATEGIES, Strategy

EXIT_EOF = 4
# Imported once here so that no run pays for importing them (a fresh fork would, every time).
INFRASTRUCTURE = ("shutil", "resource", "io", "types", "builtins", "traceback", "threading", "atexit")
MAX_ARTIFACT = 64 << 20


def respond(meta: dict, blobs=()) -> None:
    """Write one answer frame to the host."""
    write_all(1, encode_frame(meta, blobs))


def _serve(strategy: Strategy, workdir, prep_error, took_w: int) -> int:
    """In S: take one request, run it, clean up, answer."""
    req, blobs = decode_frame(fd_reader(0))
    if req is None:
        return EXIT_EOF
    os.write(took_w, b"!")
    if prep_error is not None:
        respond({"error": f"could not prepare the run: {prep_error}"})
        return 0
    try:
        strategy.begin(req, workdir)
        for f in req["files"]:
            path = os.path.join(workdir, f["path"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(blobs[f["blob"]])
            os.chmod(path, f.get("mode", 0o644))
        strategy.files_written(workdir)
    except BaseException as e:
        strategy.leave(workdir)
        respond({"error": f"could not write the program's files: {type(e).__name__}: {e}"})
        return 0
    meta, out_blobs = _run_steps(req, blobs, workdir, strategy)
    strategy.leave(workdir)
    respond(meta, out_blobs)
    return 0


def _run_steps(req: dict, blobs: list, workdir: str, strategy: Strategy) -> tuple:
    """Run the steps in order, stopping after one that failed; (meta, blobs) of the answer."""
    try:
        steps_out, out_blobs = [], []
        source = blobs[req["source_blob"]] if req.get("source_blob") is not None else b""
        env = dict(req["env"], HOME=workdir, PWD=workdir)
        env.setdefault("TMPDIR", strategy.cfg.get("tmpdir") or workdir)
        meta: dict = {}
        for step in req["steps"]:
            stdin = blobs[step["stdin_blob"]] if step.get("stdin_blob") is not None else b""
            facts, out, err = run_step(strategy, step, workdir, env, stdin, source)
            facts["stdout_blob"], facts["stderr_blob"] = len(out_blobs), len(out_blobs) + 1
            out_blobs += [out, err]
            steps_out.append(facts)
            if facts["error"] or facts["exit_code"] != 0 or facts["timed_out"] or facts["output_exceeded"]:
                break
            if step["name"] == "compile" and req.get("artifact"):
                # Taken now, before the program runs: a run that rewrites or relinks its own
                # binary changes nothing a later run of the same source gets from the cache.
                data, why = linux.read_run_file(workdir, req["artifact"], strategy.run_uid(), MAX_ARTIFACT)
                if data is not None:
                    meta["artifact_blob"] = len(out_blobs)
                    out_blobs.append(data)
                else:
                    meta["artifact_skipped"] = why
        meta["steps"] = steps_out
        return meta, out_blobs
    except BaseException as e:
        import traceback

        traceback.print_exc()
        return {"error": f"supervisor failed: {type(e).__name__}: {e}"}, []


def _runner(strategy: Strategy, took_w: int, cloned: bool) -> int:
    """Make a run's world, then serve one request in it. Returns the exit code.

    ``cloned``: this process was cloned into the strategy's namespaces and is their pid 1, so
    it is the supervisor itself. Otherwise (plain fork) it enters them with ``unshare`` and
    forks the supervisor, since a new pid namespace only applies to children.
    """
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    workdir, prep_error = None, None
    try:
        if strategy.namespaces and not cloned:
            linux.unshare(strategy.namespaces)
        workdir = strategy.prepare()
    except BaseException as e:
        prep_error = f"{type(e).__name__}: {e}"
    if not strategy.namespaces or cloned or prep_error is not None:
        return _supervisor(strategy, workdir, prep_error, took_w)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _supervisor(strategy, workdir, prep_error, took_w)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _supervisor(strategy: Strategy, workdir, prep_error, took_w: int) -> int:
    if prep_error is None:
        try:
            strategy.in_supervisor()
        except BaseException as e:
            prep_error = f"{type(e).__name__}: {e}"
    return _serve(strategy, workdir, prep_error, took_w)


def main(cfg: dict) -> None:
    """Set up once, announce readiness, then serve requests through fresh runners until input ends."""
    parent = cfg.get("parent_pid")
    if parent:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(0)
    if cfg.get("worker_netns"):  # one empty network namespace for the whole worker (local, no per-run ones)
        linux.unshare(linux.CLONE_NEWNET)
    # Python's own SIGINT handler would let a program interrupt its supervisor (pid 1 of its
    # namespace accepts just the signals it has a handler for): none here; programs get it back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in INFRASTRUCTURE + tuple(cfg.get("preload", [])):
        try:
            __import__(name)
        except ImportError:
            pass
    linux.libc()
    record_hard_limits()
    strategy = STRATEGIES[cfg["strategy"]](cfg)
    fallback_reason = None
    if cfg.get("fallback"):  # e.g. Docker under an AppArmor profile that denies mount: the weaker strategy, said aloud
        fallback_reason = _trial(strategy)
        if fallback_reason is not None:
            cfg = dict(cfg, **cfg["fallback"])
            strategy = STRATEGIES[cfg["strategy"]](cfg)
    # The seccomp filter goes on the zygote itself, once: every runner, supervisor and program
    # inherits it (nothing of ours needs what it denies), and no run pays for compiling it.
    if seccomp.prepare_seccomp():
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        seccomp.install_seccomp()
    import gc

    gc.collect()
    gc.freeze()  # keep the preloaded heap shared across forks (a collection would touch every page)

    took_r, took_w = os.pipe()
    wake_r, wake_w = os.pipe()
    net_r, net_w = os.pipe()  # a supervisor found the shared network namespace used
    strategy.in_zygote(net_w)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    ahead = cfg.get("prepare_ahead", "auto")  # "auto": when a CPU is idle; "always"; "never"

    clone = bool(strategy.namespaces) and linux.CLONE_SYSCALL is not None

    def spawn() -> int:
        pid = linux.clone_fork(strategy.namespaces) if clone else os.fork()
        if pid == 0:
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (took_r, wake_r, wake_w, net_r):
                    os.close(fd)
                code = _runner(strategy, took_w, cloned=clone)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        runners.add(pid)
        return pid

    runners: set = set()
    pending = spawn()  # the runner waiting for the next request
    respond({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0], "strategy": cfg["strategy"], "fallback_reason": fallback_reason})
    while True:
        ready, _, _ = select.select([took_r, wake_r, net_r], [], [])
        if net_r in ready:
            os.read(net_r, 4096)
            strategy.refresh_network()  # runners forked from now on share a fresh one
        if took_r in ready:
            os.read(took_r, 64)
            pending = spawn() if ahead == "always" or (ahead == "auto" and _idle_cpu()) else None
        if wake_r in ready:
            os.read(wake_r, 4096)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid not in runners:
                    continue  # an orphan reparented to us (we are pid 1 in a container)
                runners.discard(pid)
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
                if code == EXIT_EOF:
                    os._exit(0)
                if code != 0 or pid == pending:  # unknown state: the stream may be half-written
                    os._exit(1)
            if pending is None and not runners:
                pending = spawn()


def _trial(strategy: Strategy):
    """None if ``strategy`` can make a run's world here, else why not (tried once, in a throwaway child)."""
    r, w = os.pipe()
    try:
        pid = linux.clone_fork(strategy.namespaces) if linux.CLONE_SYSCALL is not None else os.fork()
    except OSError as e:
        os.close(r)
        os.close(w)
        return f"clone: {e}"
    if pid == 0:
        os.close(r)
        try:
            if linux.CLONE_SYSCALL is None:
                linux.unshare(strategy.namespaces)
            strategy.prepare()
            strategy.in_supervisor()
            os._exit(0)
        except BaseException as e:
            os.write(w, f"{type(e).__name__}: {e}".encode()[:500])
            os._exit(1)
    os.close(w)
    why = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        why += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return None if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else (why.decode("utf-8", "replace") or "failed")


def _idle_cpu() -> bool:
    """Whether a CPU is free for preparing the next run while this one goes on."""
    return os.getloadavg()[0] <= (os.cpu_count() or 1) - 1
