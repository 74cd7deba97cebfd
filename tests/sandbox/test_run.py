"""What every backend must do for ordinary programs: I/O, exit codes, languages, compile once, batches."""

from __future__ import annotations

import asyncio

import pytest

from rlvr.errors import ConfigError
from rlvr.sandbox import Limits, Program, Sandbox
from rlvr.sandbox import languages as L

ECHO = {
    "python": "import sys\nprint(sys.stdin.read().upper(), end='')\n",
    "c": "#include <stdio.h>\n#include <ctype.h>\nint main(){int c;while((c=getchar())!=EOF)putchar(toupper(c));return 0;}\n",
    "cpp": "#include <iostream>\n#include <cctype>\nint main(){char c;while(std::cin.get(c))std::cout<<(char)std::toupper(c);}\n",
    "javascript": "const s=require('fs').readFileSync(0,'utf8');process.stdout.write(s.toUpperCase());\n",
    "bash": "tr a-z A-Z\n",
}


@pytest.mark.parametrize("language", sorted(ECHO))
def test_each_language_reads_stdin_and_writes_stdout(sandbox, language):
    r = sandbox.run(Program(language, ECHO[language], stdin="hello sandbox\n"))
    assert (r.status, r.stdout, r.exit_code) == ("ok", "HELLO SANDBOX\n", 0), r.stderr


def test_exit_codes_and_messages_pass_through(sandbox):
    r = sandbox.run(Program("python", "import sys\nprint('partial')\nsys.exit(3)\n"))
    assert (r.status, r.exit_code, r.stdout) == ("runtime_error", 3, "partial\n")
    r = sandbox.run(Program("python", "raise SystemExit('bad input')\n"))
    assert (r.status, r.exit_code, r.stderr) == ("runtime_error", 1, "bad input\n")


def test_python_runs_like_a_script(sandbox):
    src = (
        "import atexit, sys, threading, time\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread joined'))).start()\n"
        "print(__name__, __file__.endswith('main.py'), sys.argv)\n"
    )
    r = sandbox.run(Program("python", src, argv=["--n", "3"]))
    assert r.status == "ok", r.stderr
    assert r.stdout == "__main__ True ['main.py', '--n', '3']\nthread joined\natexit ran\n"


def test_tracebacks_show_only_the_program(sandbox):
    r = sandbox.run(Program("python", "def f():\n    return 1 / 0\nf()\n"))
    assert r.status == "runtime_error" and "ZeroDivisionError" in r.stderr
    assert "rlvr_zygote" not in r.stderr and r.stderr.count('File "') == 2


def test_every_run_gets_fresh_randomness(sandbox):
    outs = {sandbox.run(Program("python", "import random\nprint(random.random())")).stdout for _ in range(3)}
    assert len(outs) == 3


def test_extra_files_and_argv_are_in_the_work_dir(sandbox):
    files = {"data/input.txt": "41\n", "blob.bin": b"\x00\xff"}
    src = "import sys\nprint(int(open('data/input.txt').read()) + 1, len(open('blob.bin','rb').read()), sys.argv[1:])\n"
    r = sandbox.run(Program("python", src, files=files, argv=["x"]))
    assert r.stdout == "42 2 ['x']\n"


def test_compile_errors_report_the_compile_stage_and_are_cached(backend):
    with Sandbox(backend, concurrency=1) as sb:
        bad = Program("c", "int main() { return missing; }\n")
        first = sb.run(bad)
        assert (first.status, first.stage) == ("runtime_error", "compile")
        assert "missing" in first.stderr and first.detail.startswith("compile step failed")
        assert sb.run(bad) == first and sb.compile_cache.hits == 1


def test_one_compile_serves_many_inputs(backend):
    src = "#include <stdio.h>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);}\n"
    with Sandbox(backend, concurrency=2) as sb:
        prog = Program("c", src)
        results = sb.run_many([(prog, f"{i} {i}") for i in range(6)])
        assert [r.stdout for r in results] == [f"{2 * i}\n" for i in range(6)]
        assert sb.compile_cache.misses <= 2 and len(sb.compile_cache) == 1  # two workers may race the first compile


def test_run_many_keeps_input_order_and_reports_progress(sandbox):
    seen = []
    progs = [Program("python", f"import time\ntime.sleep({0.05 * (i % 3)})\nprint({i})") for i in range(8)]
    results = sandbox.run_many(progs, concurrency=4, on_result=lambda i, r: seen.append(i))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
    assert sorted(seen) == list(range(8))


def test_asyncio_callers_get_the_same_results(sandbox):
    async def go():
        one = await sandbox.arun(Program("python", "print('a')"))
        many = await sandbox.arun_many([Program("python", f"print({i})") for i in range(4)])
        return one, many

    one, many = asyncio.run(go())
    assert one.stdout == "a\n" and [r.stdout for r in many] == ["0\n", "1\n", "2\n", "3\n"]


def test_per_run_limits_override_the_sandbox_limits(sandbox):
    r = sandbox.run(Program("python", "import time\ntime.sleep(5)"), limits=sandbox.limits.replace(time_limit_s=0.3))
    assert r.status == "timeout" and "0.3 s" in r.detail


def test_output_over_the_cap_is_truncated_and_flagged(sandbox):
    r = sandbox.run(Program("python", "print('x' * 200_000)"))
    assert r.status == "output_limit" and r.truncated and len(r.stdout) == sandbox.limits.max_output_bytes


def test_a_missing_toolchain_is_a_sandbox_error_not_a_crash(sandbox, monkeypatch):
    lang = L.Language(name="fortran-test", source_file="main.f90", compile=("no-such-compiler-xyz", "main.f90"), run=("./main",), artifact="main")
    monkeypatch.setitem(L._LANGUAGES, lang.name, lang)
    L.LANGUAGES.register(lang.name, lang)
    try:
        r = sandbox.run(Program("fortran-test", "end"))
    finally:
        L.LANGUAGES.unregister(lang.name)
    assert r.status == "sandbox_error" and "no-such-compiler-xyz" in r.detail and r.stage == "compile"


def test_a_program_cannot_fake_a_sandbox_error(sandbox):
    r = sandbox.run(Program("python", "import sys\nsys.stderr.write('rlvr sandbox: cannot execute python')\nsys.exit(127)"))
    assert r.status == "runtime_error"


def test_a_dead_worker_is_replaced(backend):
    with Sandbox(backend, concurrency=1) as sb:
        assert sb.run(Program("python", "print(1)")).ok
        (worker,) = sb._pool._idle
        worker.close()  # as if the worker had died between runs
        assert sb.run(Program("python", "print(2)")).stdout == "2\n"


def test_warm_workers_are_reused(backend):
    with Sandbox(backend, concurrency=1) as sb:
        for i in range(3):
            assert sb.run(Program("python", f"print({i})")).ok
        assert sb._pool.started == 1


def test_bad_configuration_fails_before_any_work():
    with pytest.raises(ConfigError, match="limits.time_limit_s"):
        Sandbox("local", {"time_limit_s": -1})
    with pytest.raises(ConfigError, match="concurrency"):
        Sandbox("local", concurrency=0)
    with pytest.raises(ConfigError, match="did you mean"):
        Sandbox("dcoker")
    with pytest.raises(ConfigError, match="option"):
        Sandbox("local", image="x")
    with Sandbox("local", concurrency=1) as sb, pytest.raises(ConfigError):
        sb.run("print(1)")
    assert Limits.from_dict({"memory_mb": 64}).memory_mb == 64


def test_a_sandbox_is_not_shared_across_a_fork():
    import os

    from rlvr.errors import SandboxError

    with Sandbox("local", concurrency=1) as sb:
        assert sb.run(Program("python", "print(1)")).ok
        pid = os.fork()
        if pid == 0:
            try:
                sb.run(Program("python", "print(1)"))
                code = 1
            except SandboxError:
                code = 0
            sb.close()  # as an exiting child's finalizers would: must leave the parent's workers alone
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert sb.run(Program("python", "print(2)")).stdout == "2\n"
