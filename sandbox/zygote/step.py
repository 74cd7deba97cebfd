"""One step of a run: fork the program (P), feed it, watch it, kill what it leaves, report facts.

P applies the rlimits, drops privileges, puts stdin on a memfd and stdout/stderr on pipes,
then either ``execve``s the toolchain or, for Python, runs the source as ``__main__`` right in
this fork. The supervisor (S) reads both pipes up to the output cap, enforces the wall clock,
and afterwards kills every process the step left (see ``strategies``). It reports raw facts
(exit status, signal, which of its own limits it enforced, usage); the host turns them into a
status, so nothing the program prints can change how its run is classified.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

from . import linux

SETUP_FAILED = 127
HARD_LIMITS: dict = {}  # the zygote's hard rlimits, read once (``record_hard_limits``)


def record_hard_limits() -> None:
    """Remember the hard limits, which runs may lower but not raise (called once, before forking)."""
    import resource

    for name in ("RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC"):
        res = getattr(resource, name)
        HARD_LIMITS[res] = resource.getrlimit(res)[1]


def which(name: str, path: str, workdir: str):
    """Absolute path of an executable, as ``execvp`` would find it."""
    if "/" in name:
        cand = os.path.join(workdir, name)
        return cand if os.access(cand, os.X_OK) else None
    for d in path.split(":"):
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _stdin_fd(data: bytes) -> int:
    if not data:
        return os.open("/dev/null", os.O_RDONLY)
    fd = os.memfd_create("stdin", 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _set_limits(lim: dict) -> None:
    import resource

    def clamp(res, value):  # an unprivileged process cannot raise a hard limit: stay under it
        hard = HARD_LIMITS.get(res, resource.RLIM_INFINITY)
        return value if hard == resource.RLIM_INFINITY else min(value, hard)

    mem = lim["memory_mb"] << 20
    mem_res = resource.RLIMIT_DATA if lim.get("memory_rlimit") == "data" else resource.RLIMIT_AS
    for res, soft, hard in (
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, lim["cpu_s"], lim["cpu_s"] + 1),
        (mem_res, mem, mem),
        (resource.RLIMIT_STACK, lim["stack_mb"] << 20, lim["stack_mb"] << 20),
        (resource.RLIMIT_FSIZE, lim["file_mb"] << 20, lim["file_mb"] << 20),
        (resource.RLIMIT_NOFILE, lim["open_files"], lim["open_files"]),
        (resource.RLIMIT_NPROC, lim["nproc"], lim["nproc"]),
    ):
        resource.setrlimit(res, (clamp(res, soft), clamp(res, hard)))


def _program(strategy, step: dict, workdir: str, env: dict, fds: tuple, source: bytes) -> None:
    """In P: become the program. Never returns.

    Setup and exec failures go to ``report`` (close-on-exec), never to the program's own
    stderr, so a program cannot fake a sandbox error by printing one.
    """
    stdin_fd, out_w, err_w, report = fds
    try:
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        _close_fds_except(report)
        os.chdir(workdir)
        strategy.in_program()
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        with open("/proc/self/oom_score_adj", "w") as f:  # the OOM killer's first choice, never the supervisor
            f.write("1000")
        _set_limits(step["limits"])
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    except BaseException as e:
        _report_and_exit(report, f"program setup failed: {type(e).__name__}: {e}")
    if step.get("python"):
        os.close(report)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in any fresh interpreter
        _run_python(source, step, workdir, env)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execve(step["exe"], step["argv"], env)
    except OSError as e:
        _report_and_exit(report, f"cannot execute {step['argv'][0]}: {e.strerror}")


def _close_fds_except(keep: int) -> None:
    # Only the open ones: closing 65k numbers one by one costs ~20 ms where seccomp blocks close_range.
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _report_and_exit(fd: int, message: str) -> None:
    try:
        os.write(fd, message.encode("utf-8", "replace"))
    finally:
        os._exit(SETUP_FAILED)


def _run_python(source: bytes, step: dict, workdir: str, env: dict) -> None:
    """In P: run ``source`` as ``__main__`` the way ``python3 main.py`` would, then exit."""
    import builtins
    import io
    import types

    os.environ.clear()
    os.environ.update(env)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="surrogateescape")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", errors="surrogateescape")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8", errors="backslashreplace", line_buffering=True)
    path = os.path.join(workdir, step["source_file"])
    sys.argv = [step["source_file"]] + list(step["argv"][1:])
    sys.path.insert(0, workdir)
    sys.dont_write_bytecode = True
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.excepthook = sys.__excepthook__
    code = 0
    try:
        exec(compile(source, path, "exec"), main.__dict__)
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException as e:
        e = e.with_traceback(e.__traceback__.tb_next if e.__traceback__ else None)  # hide this runner's frame
        sys.excepthook(type(e), e, e.__traceback__)
        code = 1
    for finish in ("threading", "atexit"):  # what the interpreter does at exit: join threads, atexit
        try:
            if finish == "threading":
                sys.modules["threading"]._shutdown()
            else:
                sys.modules["atexit"]._run_exitfuncs()
        except BaseException:
            pass
    try:
        sys.stdout.flush()
    except BaseException:
        code = 120  # what CPython exits with when flushing stdout fails
    try:
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code & 0xFF)


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        sys.stderr.write(f"{value}\n")
    except BaseException:
        pass
    return 1


def run_step(strategy, step: dict, workdir: str, env: dict, stdin: bytes, source: bytes) -> tuple:
    """In S: run one step to its end; returns (facts, stdout, stderr)."""
    import resource

    facts = {"name": step["name"], "exit_code": None, "signal": None, "timed_out": False, "output_exceeded": False,
             "truncated": False, "wall_s": 0.0, "cpu_s": 0.0, "max_rss_kb": 0, "error": None}
    if not step.get("python"):
        exe = which(step["argv"][0], env.get("PATH", "/usr/bin:/bin"), workdir)
        if exe is None:
            facts["error"] = f"toolchain missing: {step['argv'][0]!r} is not installed inside the sandbox"
            return facts, b"", b""
        step["exe"] = exe
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    report_r, report_w = os.pipe()  # close-on-exec: stays empty unless setup or exec fails
    in_fd = _stdin_fd(stdin)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    count_ooms = bool(strategy.cfg.get("oom_counter"))
    ooms_before = linux.oom_kills() if count_ooms else 0
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _program(strategy, step, workdir, env, (in_fd, out_w, err_w, report_w), source)
    for fd in (out_w, err_w, in_fd, report_w):
        os.close(fd)
    report = b""
    while True:  # EOF as soon as P execs or starts the Python source
        chunk = os.read(report_r, 4096)
        if not chunk:
            break
        report += chunk
    os.close(report_r)
    if report:
        facts["error"] = report.decode("utf-8", "replace")
    cap, deadline = step["limits"]["output_bytes"], t0 + step["limits"]["wall_s"]
    bufs = {out_r: bytearray(), err_r: bytearray()}
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # older kernel or Python: poll the child every 20 ms instead
    poller = select.poll()
    for fd in (out_r, err_r):
        poller.register(fd, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    status = usage = None
    while status is None:
        left = deadline - time.monotonic()
        if left <= 0:
            facts["timed_out"] = True
            break
        for fd, _ in poller.poll(min(left, 0.02 if pidfd is None else left) * 1000 + 1):
            if fd == pidfd:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                poller.unregister(fd)
                continue
            bufs[fd] += chunk
            if len(bufs[fd]) > cap:
                facts["output_exceeded"] = True
        if facts["output_exceeded"]:
            break
        got, st, ru = os.wait4(pid, os.WNOHANG)
        if got == pid:
            status, usage = st, ru
    facts["wall_s"] = time.monotonic() - t0
    if status is None:
        os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    strategy.kill_all(pid)
    for fd in (out_r, err_r):  # every writer is dead now: take what is left, up to the cap
        os.set_blocking(fd, False)
        try:
            while len(bufs[fd]) <= cap:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                bufs[fd] += chunk
        except BlockingIOError:
            pass
        os.close(fd)
    if pidfd is not None:
        os.close(pidfd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    facts["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    facts["max_rss_kb"] = usage.ru_maxrss
    if os.WIFSIGNALED(status):
        facts["signal"] = os.WTERMSIG(status)
        facts["exit_code"] = -facts["signal"]
    else:
        facts["exit_code"] = os.WEXITSTATUS(status)
    facts["truncated"] = len(bufs[out_r]) > cap or len(bufs[err_r]) > cap
    if count_ooms:
        facts["oom_kills"] = linux.oom_kills() - ooms_before
    return facts, bytes(bufs[out_r][:cap]), bytes(bufs[err_r][:cap])
