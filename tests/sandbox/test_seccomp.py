"""The seccomp filter, installed in a forked child of the test process: what it denies and what it leaves alone."""

from __future__ import annotations

import os
import threading

import pytest

from rlvr.sandbox.zygote import linux, seccomp


def _in_filtered_child(fn) -> int:
    """Run ``fn() -> int`` in a child under the filter; its return value is the exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            assert seccomp.prepare_seccomp()
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.install_seccomp()
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status)


@pytest.mark.skipif(seccomp.seccomp_filter_bytes() is None, reason="no filter for this architecture")
def test_keyrings_user_namespaces_and_clone3_are_denied_and_threads_still_start():
    import ctypes

    def probe() -> int:
        lib = ctypes.CDLL(None, use_errno=True)
        nr = {"x86_64": (248, 272, 435), "aarch64": (217, 97, 435), "riscv64": (217, 97, 435)}[os.uname().machine]
        bits = 0
        if lib.syscall(nr[0], b"user", b"k", b"v", 1, -4) < 0 and ctypes.get_errno() == 1:
            bits |= 1  # add_key: EPERM
        if lib.unshare(0x10000000) < 0 and ctypes.get_errno() == 1:
            bits |= 2  # a new user namespace: EPERM
        if lib.syscall(nr[2], None, 0) < 0 and ctypes.get_errno() == 38:
            bits |= 4  # clone3: ENOSYS, so libc uses clone
        out = []
        t = threading.Thread(target=lambda: out.append(1))
        t.start()
        t.join()
        if out == [1] and os.waitpid(_fork_exit(), 0)[1] == 0:
            bits |= 8  # threads and fork still work
        return bits

    assert _in_filtered_child(probe) == 15


def _fork_exit() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return pid


def test_an_unknown_architecture_gets_no_filter_rather_than_a_wrong_one():
    assert seccomp.seccomp_filter_bytes("sparc64") is None
    code = seccomp.seccomp_filter_bytes("x86_64")
    assert code and len(code) % 8 == 0
