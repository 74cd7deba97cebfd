"""The hostile-program corpus: what model-written code might do to a grader, and what must happen.

Each case is a program (``@TOKEN@``-style markers are filled per test), the statuses it may end
with, and optionally a check of its result. ``test_hostile.py`` runs every case on every
available backend and then checks the host: no process carrying the case's token survives,
the world-writable host directory stayed empty, the loopback listener got no connection, and
the sandbox still runs a program afterwards.

``needs`` names an ``Isolation`` property the case's check relies on; a backend without it (the
local backend's documented weaknesses) skips that case with the reason printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Optional

COMM = "import os\nopen('/proc/self/comm', 'w').write('@COMM@')\n"  # children inherit it: survivors are findable


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    expect: frozenset
    language: str = "python"
    check: Optional[Callable] = None
    needs: Optional[str] = None
    backends: tuple = ("local", "bwrap", "docker")
    files: dict = field(default_factory=dict)
    stdin: str = ""
    limits: dict = field(default_factory=dict)  # per-run overrides of the hostile limits


def _denied_lines(result, ctx) -> None:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, result
    bad = [line for line in lines if not line.startswith("DENIED")]
    assert not bad, f"allowed: {bad}"


def _no_secret(result, ctx) -> None:
    assert ctx.secret_value not in result.stdout + result.stderr
    assert ctx.env_secret not in result.stdout + result.stderr


def _sanitized_passwd(result, ctx) -> None:
    assert result.status == "ok"
    users = {line.split(":")[0] for line in result.stdout.splitlines() if line}
    assert users == {"root", "sandbox", "nobody"}, users


def _replaced_utf8(result, ctx) -> None:
    assert "\ufffd" in result.stdout and result.stdout.endswith("tail\n")


def _stdout(expected):
    def check(result, ctx) -> None:
        assert result.stdout == expected, result
    return check


def _signal(name):
    def check(result, ctx) -> None:
        assert result.signal == name, result
    return check


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """512 MiB of zeros in 2.3 MiB, twice the sandbox's memory cap (built in chunks, level 1: quick)."""
    import zlib

    z = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip container
    chunk = b"\0" * (1 << 20)
    return b"".join(z.compress(chunk) for _ in range(512)) + z.flush()


PY = "python"
CASES = [
    # ---------------------------------------------------------------- resource exhaustion
    Case("fork_bomb", COMM + "while True:\n    os.fork()\n", frozenset({"runtime_error", "timeout", "killed"})),
    Case("fork_bomb_bash", "echo -n @COMM@ > /proc/self/comm\nb(){ b|b& };b\nwait\n",
         frozenset({"ok", "runtime_error", "timeout", "killed"}), language="bash"),
    Case("memory_bomb", "a = []\nwhile True:\n    a.append(' ' * 10**7)\n", frozenset({"memory_limit"})),
    Case("memory_bomb_c", "#include <stdlib.h>\n#include <string.h>\nint main(){for(;;){char*p=malloc(1<<20);memset(p,1,1<<20);}}\n",
         frozenset({"memory_limit"}), language="c"),
    Case("memory_bomb_js", "const a=[];for(;;)a.push(new Array(1e6).fill(1.5));", frozenset({"memory_limit"}), language="javascript"),
    Case("zip_bomb_in_memory", "import gzip\nprint(len(gzip.decompress(open('bomb.gz','rb').read())))\n",
         frozenset({"memory_limit"}), files={"bomb.gz": "@BOMB@"}),
    Case("zip_bomb_to_disk", "import gzip, shutil\nwith gzip.open('bomb.gz') as src, open('out.bin', 'wb') as dst:\n    shutil.copyfileobj(src, dst)\n",
         frozenset({"runtime_error", "output_limit"}), files={"bomb.gz": "@BOMB@"}),
    Case("disk_fill_one_file", "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))\n",
         frozenset({"runtime_error", "output_limit"})),
    Case("disk_fill_many_files", "for i in range(100):\n    open(f'f{i}', 'wb').write(b'x' * (1 << 20))\nprint('wrote 100 MiB')\n",
         frozenset({"runtime_error"}), needs="disk_quota"),
    Case("shm_fill", "for i in range(100):\n    open(f'/dev/shm/f{i}', 'wb').write(b'x' * (1 << 20))\n",
         frozenset({"runtime_error"}), needs="disk_quota"),
    Case("giant_stdout", "while True:\n    print('x' * 1000)\n", frozenset({"output_limit"})),
    Case("giant_stderr", "import sys\nwhile True:\n    sys.stderr.write('y' * 1000)\n", frozenset({"output_limit"})),
    Case("giant_output_bash", "yes\n", frozenset({"output_limit"}), language="bash"),
    Case("thread_spam", "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n",
         frozenset({"runtime_error"})),
    Case("open_files", "fs = []\nwhile True:\n    fs.append(open(__file__))\n", frozenset({"runtime_error"})),
    Case("huge_recursion", "def f(n):\n    return f(n + 1)\nf(0)\n", frozenset({"runtime_error"})),
    # CPython 3.11+ keeps Python frames off the C stack: this ends by memory, a crash or the clock.
    Case("recursion_past_the_stack", "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1) + 1\nf(0)\n",
         frozenset({"runtime_error", "memory_limit", "timeout"})),
    # ---------------------------------------------------------------- time
    Case("infinite_loop", "while True:\n    pass\n", frozenset({"timeout"})),
    Case("infinite_loop_c", "int main(){volatile int x=0;for(;;)x++;}\n", frozenset({"timeout"}), language="c"),
    Case("sleep", "import time\ntime.sleep(100)\n", frozenset({"timeout"})),
    Case("cpu_burning_children", COMM + "for _ in range(4):\n    if os.fork() == 0:\n        while True:\n            pass\nos.wait()\n",
         frozenset({"timeout"})),
    Case("stop_self", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n", frozenset({"timeout"})),
    Case("stdin_read_gets_eof", "import sys\nprint(repr(sys.stdin.read()))\n", frozenset({"ok"}), check=_stdout("''\n")),
    Case("input_on_empty_stdin", "input()\n", frozenset({"runtime_error"})),
    # ---------------------------------------------------------------- escapes and leftovers
    Case("setsid_daemon", "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)', '@TOKEN@'], start_new_session=True)\nprint('started')\n",
         frozenset({"ok"})),
    Case("double_fork_daemon", COMM + "import time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(1000)\n    os._exit(0)\nos.wait()\nprint('parent done')\n",
         frozenset({"ok"})),
    Case("nohup_background_bash", "nohup bash -c 'exec -a @TOKEN@ sleep 1000' >/dev/null 2>&1 &\necho started\n", frozenset({"ok"}), language="bash"),
    Case("orphan_keeps_stdout_open", COMM + "import time\nif os.fork() == 0:\n    time.sleep(1000)\nprint('parent exits')\n",
         frozenset({"ok"})),
    Case("kill_parent", "import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n        print('sent', pid)\n    except OSError as e:\n        print('DENIED', pid, e)\n",
         frozenset({"ok"}), needs="signals"),
    Case("interrupt_the_supervisor", "import os, signal\nfor sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGSTOP):\n"
         "    for pid in (1, os.getppid()):\n        try:\n            os.kill(pid, sig)\n        except OSError:\n            pass\nprint('still here')\n",
         frozenset({"ok"}), needs="signals"),
    Case("kill_everything", "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError as e:\n    print('DENIED', e)\nprint('still here')\n",
         frozenset({"ok", "killed"}), needs="signals"),
    Case("write_outside_the_work_dir",
         "import os\nfor p in ['/usr/rlvr-@TOKEN@', '/etc/rlvr-@TOKEN@', '/rlvr-@TOKEN@', '/dev/rlvr-@TOKEN@', '/proc/rlvr-@TOKEN@',\n"
         "          '@CHECKOUT@/rlvr-@TOKEN@']:\n"
         "    try:\n        open(p, 'w').write('x')\n        print('WROTE', p)\n    except OSError as e:\n        print('DENIED', p, e.strerror)\n",
         frozenset({"ok"}), check=_denied_lines),
    Case("write_into_a_world_writable_host_dir", "open('@HOST_DIR@/from-sandbox', 'w').write('x')\n",
         frozenset({"runtime_error"}), needs="host_files_hidden"),
    Case("proc_and_sys_writes", "for p in ['/proc/sysrq-trigger', '/proc/sys/kernel/hostname', '/sys/kernel/uevent_helper']:\n"
         "    try:\n        open(p, 'w').write('x')\n        print('WROTE', p)\n    except OSError as e:\n        print('DENIED', p, e.strerror)\n",
         frozenset({"ok"}), check=_denied_lines),
    # ---------------------------------------------------------------- privilege
    Case("setuid_root", "import os\ntry:\n    os.setuid(0)\n    print('BECAME ROOT')\nexcept OSError as e:\n    print('DENIED', e.strerror)\n",
         frozenset({"ok"}), check=_denied_lines),
    Case("mount_and_chroot", "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "print('DENIED mount' if libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) != 0 else 'MOUNTED')\n"
         "try:\n    os.chroot('/tmp')\n    print('CHROOTED')\nexcept OSError as e:\n    print('DENIED chroot', e.strerror)\n",
         frozenset({"ok"}), check=_denied_lines),
    Case("ptrace_parent", "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "print('DENIED' if libc.ptrace(16, os.getppid(), None, None) != 0 else 'ATTACHED')\n",
         frozenset({"ok"}), needs="signals", check=_denied_lines),
    Case("new_user_namespace", "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "print('DENIED' if libc.unshare(0x10000000) != 0 else 'UNSHARED')\n",
         frozenset({"ok"}), check=_denied_lines),  # every backend: the seccomp filter
    Case("keyring_store", "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "for ring in (-4, -3, -2, -5):\n    print('DENIED' if libc.syscall(248, b'user', b'rlvr', b'v', 1, ring) < 0 else 'STORED')\n",
         frozenset({"ok"}), check=_denied_lines),
    # ---------------------------------------------------------------- secrets and the host
    Case("environment_secrets", "import os\nprint(dict(os.environ))\nfor p in ['/proc/1/environ', f'/proc/{os.getppid()}/environ']:\n"
         "    try:\n        print(open(p, 'rb').read())\n    except OSError as e:\n        print('DENIED', p)\n",
         frozenset({"ok"}), check=_no_secret),
    Case("read_secret_file", "print(open('@SECRET@').read())\n", frozenset({"runtime_error"}), check=_no_secret),
    Case("read_etc_passwd", "print(open('/etc/passwd').read(), end='')\n", frozenset({"ok"}), check=_sanitized_passwd, needs="host_files_hidden"),
    Case("list_above_the_checkout", "import os\nprint(os.listdir('@CHECKOUT@/..'))\nprint(open('@CHECKOUT@/pyproject.toml').read())\n",
         frozenset({"runtime_error"}), needs="host_files_hidden"),
    Case("network_loopback_listener", "import socket\ns = socket.create_connection(('127.0.0.1', @PORT@), timeout=1)\ns.sendall(b'@TOKEN@')\n",
         frozenset({"runtime_error"}), needs="network"),
    Case("network_internet", "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\n", frozenset({"runtime_error"}), needs="network"),
    Case("network_bash_dev_tcp", "echo @TOKEN@ > /dev/tcp/127.0.0.1/@PORT@\n", frozenset({"runtime_error"}), language="bash", needs="network"),
    # ---------------------------------------------------------------- crashes and odd output
    Case("segfault_ctypes", "import ctypes\nctypes.string_at(0)\n", frozenset({"runtime_error"}), check=_signal("SIGSEGV")),
    Case("abort_c", "#include <stdlib.h>\nint main(){abort();}\n", frozenset({"runtime_error"}), language="c", check=_signal("SIGABRT")),
    Case("terminate_self", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", frozenset({"runtime_error"}), check=_signal("SIGTERM")),
    Case("sigkill_self", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", frozenset({"killed"}), check=_signal("SIGKILL")),
    Case("invalid_utf8_output", "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x80 tail\\n')\n", frozenset({"ok"}), check=_replaced_utf8),
    Case("nul_bytes_in_source", "print(1)\0\n", frozenset({"runtime_error"})),
]
CASES.append(
    # rlimits cap each process; only the worker's memory cgroup (or container) caps them together.
    Case("memory_across_many_processes",
         COMM + "import time\nfor _ in range(8):\n    if os.fork() == 0:\n        b = bytearray(200 << 20)\n        time.sleep(0.5)\n        os._exit(0)\n"
         "statuses = [os.wait()[1] for _ in range(8)]\nraise SystemExit(any(statuses))\n",
         frozenset({"memory_limit"}), needs="total_memory", limits={"time_limit_s": 15}),
)
