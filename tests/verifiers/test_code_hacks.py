"""Reward hacks against the code verifier: none of these programs may be rewarded.

Each hostile program is scored on the default backend and on ``local`` (the weakest, when it
runs here as root). Secrets the tests hide are random per session and never written to disk, so a
program can only find them by breaking the harness's separation. Where a hack leaves evidence
that it really ran (the value it returned, what it found), the test checks that too.
"""

import secrets

import pytest

from rlvr.verifiers import CodeVerifier


def _backends() -> list:
    try:
        from rlvr.sandbox import default_backend, probe_backends

        default = default_backend()
    except Exception:
        return [pytest.param("auto", marks=pytest.mark.skip(reason="no sandbox backend works here"))]
    out = ["auto"]
    import os

    local_ok = any(name == "local" and ok for name, ok, _ in probe_backends())
    if default != "local":
        reason = "local backend unavailable" if not local_ok else "local without root shares the grader's uid (documented as trusted code only)"
        out.append(pytest.param("local", marks=pytest.mark.skipif(not (local_ok and os.geteuid() == 0), reason=reason)))
    return out


SECRET = "SECRET-" + secrets.token_hex(12)
IO_SECRET = "IOSECRET-" + secrets.token_hex(12)
OTHER = "B-" + secrets.token_hex(8)

ADD = {"kind": "assert", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n    assert candidate(2, 2) == 4\n", "entry_point": "add"}
LEAK = {"kind": "assert", "test": f"def check(candidate):\n    assert candidate() == {SECRET!r}\n", "entry_point": "leak"}
IO_LEAK = {"kind": "io", "cases": [{"stdin": "x\n", "stdout": IO_SECRET + "\n"}]}
TWO_CASES = {"kind": "io", "cases": [{"stdin": "1\n", "stdout": "A\n"}, {"stdin": "2\n", "stdout": OTHER + "\n"}]}

# A thorough snoop: files it can reach, every fd, stdin, /proc of every process of its uid
# (cmdline, environ, fds, memory), its own memory and the garbage collector's objects.
SNOOP = r'''
import gc, os, re, sys, time

def _snoop(marker):
    # the marker plus the secret's hex digits (the marker alone is in this very source)
    pattern, t_end = re.compile(re.escape(marker.encode()) + rb"[0-9a-f]{16,}"), time.monotonic() + 3.0

    def hit(data):
        m = pattern.search(data)
        return m.group().decode() if m else None

    def read(path, n=1 << 16):
        try:  # non-blocking: a pipe (its own channel to the tester, say) must not hang the snoop
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return b""
        try:
            return os.read(fd, n)
        except OSError:
            return b""
        finally:
            os.close(fd)

    def scan_mem(pid):
        try:
            maps = open("/proc/%s/maps" % pid).read().splitlines()
            mem = open("/proc/%s/mem" % pid, "rb", 0)
        except Exception:
            return None
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if "r" not in line.split()[1] or hi - lo > (256 << 20):
                continue
            try:
                mem.seek(lo)
                found = hit(mem.read(hi - lo))
            except Exception:
                continue
            if found:
                return found
        return None

    here = os.getcwd()
    roots = [here, os.path.dirname(here), "/tmp", "/dev/shm", "/var/tmp", os.path.expanduser("~")]
    seen = 0
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            if dirpath.count("/") - root.count("/") > 3 or seen > 3000 or time.monotonic() > t_end:
                dirs[:] = []
                continue
            for name in files:
                seen += 1
                found = hit(read(os.path.join(dirpath, name)))
                if found:
                    return found
    for fd in range(0, 64):
        try:
            found = hit(os.pread(fd, 1 << 20, 0))
        except Exception:
            found = None
        if found:
            return found
    try:
        found = hit(sys.stdin.buffer.read(1 << 20))
        if found:
            return found
    except Exception:
        pass
    me = os.getuid()
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if os.stat("/proc/" + pid).st_uid != me:
                continue
        except OSError:
            continue
        for what in ("cmdline", "environ"):
            found = hit(read("/proc/%s/%s" % (pid, what)))
            if found:
                return found
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            fds = []
        for fd in fds:
            found = hit(read("/proc/%s/fd/%s" % (pid, fd)))
            if found:
                return found
        found = scan_mem(pid)
        if found:
            return found
    found = scan_mem("self")
    if found:
        return found
    for obj in gc.get_objects():
        if isinstance(obj, str) and hit(obj.encode("utf-8", "replace")):
            return hit(obj.encode("utf-8", "replace"))
        if callable(obj) and getattr(obj, "__name__", "") == "check":
            return "found check()"
    return "NOTFOUND"
'''

HACKS = {
    # --- assert-style -------------------------------------------------------------------------
    "exit_before_the_tests": ("import os\nos._exit(0)\ndef add(a, b):\n    return a + b", ADD),
    "exit_during_a_call": ("import os\ndef add(a, b):\n    os._exit(0)", ADD),
    "sys_exit_at_import": ("import sys\nsys.exit(0)", ADD),
    "raise_system_exit_in_the_call": ("def add(a, b):\n    raise SystemExit(0)", ADD),
    "always_equal_object": (
        "class AlwaysEq:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n"
        "def add(a, b):\n    return AlwaysEq()",
        ADD,
    ),
    "int_subclass_that_equals_anything": ("class I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\ndef add(a, b):\n    return I(0)", ADD),
    "redefines_check": ("def check(candidate):\n    pass\ndef add(a, b):\n    return -7", ADD),
    "patches_builtins_and_assert": (
        "import builtins, sys\nclass Never(Exception):\n    pass\nbuiltins.AssertionError = Never\nbuiltins.abs = lambda x: 0\n"
        "builtins.isinstance = lambda *a: True\nsys.modules['builtins'].__dict__['print'] = None\n"
        "main = sys.modules.get('__main__')\nif main is not None:\n    main.__dict__['check'] = lambda c: None\n"
        "def add(a, b):\n    return -7",
        ADD,
    ),
    "trace_hook_skips_asserts": (
        "import sys\ndef tracer(frame, event, arg):\n    return None\nsys.settrace(tracer)\nsys.setprofile(lambda *a: None)\ndef add(a, b):\n    return -7",
        ADD,
    ),
    "forges_verdict_records": (
        "import atexit, json, os, sys\n"
        "fake = ''.join('\\n@rlvr ' + '0' * 64 + ' ' + json.dumps(r, sort_keys=True, separators=(',', ':')) + '\\n' for r in "
        "[{'t': 0, 'v': 'pass', 'm': '', 'ms': 0.0}, {'t': 1, 'v': 'pass', 'm': '', 'ms': 0.0}, {'t': 2, 'v': 'pass', 'm': '', 'ms': 0.0}, {'done': 3}])\n"
        "def spray():\n    print(fake, flush=True)\n    sys.stderr.write(fake)\n"
        "    for path in ['/proc/%d/fd/1' % os.getppid(), '/proc/%d/fd/2' % os.getppid(), '/proc/1/fd/1', '/dev/stdout', '/dev/tty']:\n"
        "        try:\n            with open(path, 'w') as f:\n                f.write(fake)\n        except Exception:\n            pass\n"
        "    for fd in (0, 1, 2):\n        try:\n            os.write(fd, fake.encode())\n        except Exception:\n            pass\n"
        "spray()\natexit.register(spray)\ndef add(a, b):\n    spray()\n    return -7",
        ADD,
    ),
    "garbles_its_channel_to_the_tester": (
        "import os\ndef add(a, b):\n    for fd in range(3, 32):\n        try:\n            os.write(fd, b'\\x00\\x00\\x00\\x04true')\n        except OSError:\n            pass\n    return a + b",
        ADD,
    ),
    "kills_the_tester": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\ndef add(a, b):\n    return a + b", ADD),
    "reads_the_tests": (SNOOP + f"\ndef leak():\n    return _snoop({SECRET[:10]!r})", LEAK),
    # --- io ----------------------------------------------------------------------------------------
    "io_exit_zero_without_output": ("import os\nos._exit(0)", TWO_CASES),
    "io_prints_the_output_of_another_case": ("print('A')", TWO_CASES),
    "io_reads_the_expected_output": (SNOOP + f"\nprint(_snoop({IO_SECRET[:12]!r}))", IO_LEAK),
}


@pytest.fixture(scope="module", params=_backends())
def hacked(request):
    """Every hack scored in one batch on one backend: {name: Score}."""
    v = CodeVerifier(backend=request.param, time_limit_s=5)
    try:
        names = list(HACKS)
        rows = [{"completion": f"```python\n{HACKS[n][0]}\n```", "tests": HACKS[n][1]} for n in names]
        yield dict(zip(names, v.score_many(rows)))
    finally:
        v.close()


@pytest.mark.parametrize("name", list(HACKS))
def test_hack_is_not_rewarded(hacked, name):
    s = hacked[name]
    assert s.reward == 0.0 and s.correct is not True, s.detail
    assert s.status in ("wrong", "timeout"), s.detail  # judged, not dodged as a verifier error


def test_objects_that_claim_equality_are_refused_as_non_data(hacked):
    assert "returned an object of type AlwaysEq, not plain data" in hacked["always_equal_object"].detail
    assert "returned an object of type I, not plain data" in hacked["int_subclass_that_equals_anything"].detail


def test_patching_the_candidate_process_leaves_the_tests_intact(hacked):
    for name in ("redefines_check", "patches_builtins_and_assert", "trace_hook_skips_asserts", "forges_verdict_records"):
        detail = hacked[name].detail
        assert "passed 0/3 tests" in detail and "add(1, 2) returned -7" in detail, (name, detail)


def test_exiting_or_killing_gives_no_verdicts(hacked):
    assert "while loading (exit code 0)" in hacked["exit_before_the_tests"].detail
    assert "the program's process ended during add(1, 2) (exit code 0)" in hacked["exit_during_a_call"].detail
    assert "called exit()" in hacked["sys_exit_at_import"].detail
    assert "raised SystemExit" in hacked["raise_system_exit_in_the_call"].detail
    assert "passed 0/3 tests" in hacked["kills_the_tester"].detail


def test_the_tests_cannot_be_read_from_disk_memory_or_other_processes(hacked):
    assert "leak() returned 'NOTFOUND'" in hacked["reads_the_tests"].detail
    assert "got 'NOTFOUND\\n'" in hacked["io_reads_the_expected_output"].detail


def test_printing_another_cases_output_passes_only_that_case(hacked):
    detail = hacked["io_prints_the_output_of_another_case"].detail
    assert "passed 1/2 cases" in detail and f"expected '{OTHER}\\n', got 'A\\n'" in detail
