"""The seccomp filter every run lives under: no keyrings, no new user namespaces, no foreign ABI.

Classic BPF built by hand (standard library only, like the rest of the zygote) and installed
once on the zygote, so runners, supervisors and programs inherit it and no run pays for it.
"""

from __future__ import annotations

import os

from . import linux

# Per architecture: (AUDIT_ARCH, syscalls denied with EPERM, syscalls denied with ENOSYS,
# syscalls denied with EPERM when their first argument asks for CLONE_NEWUSER).
# Keyrings (add_key, request_key, keyctl) are not namespaced by pid, mount or network
# namespaces: a key added in one run would be found by the next on the same worker (or, for
# local, by any later run of the same uid). clone3 gets ENOSYS so libc falls back to clone,
# whose flags a filter can read; new user namespaces are the kernel's widest attack surface;
# setns would join a namespace of someone else's.
_SECCOMP_ARCH = {
    "x86_64": (0xC000003E, (248, 249, 250, 308), (435,), (56, 272)),
    "aarch64": (0xC00000B7, (217, 218, 219, 268), (435,), (220, 97)),
    "riscv64": (0xC00000F3, (217, 218, 219, 268), (435,), (220, 97)),
}
CLONE_NEWUSER = 0x10000000
_SECCOMP_SYSCALL = {"x86_64": 317, "aarch64": 277, "riscv64": 277}
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_SECCOMP = None  # (sock_fprog, its instructions buffer), built before any fork


def seccomp_filter_bytes(machine: str | None = None) -> bytes | None:
    """The classic-BPF seccomp program P installs, as bytes (None on an unknown architecture)."""
    import errno
    import struct

    spec = _SECCOMP_ARCH.get(machine or os.uname().machine)
    if spec is None:
        return None
    arch, eperm, enosys, no_userns = spec
    LD, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
    ALLOW, ERRNO = 0x7FFF0000, 0x00050000
    prog: list = []  # (code, jt, jf, k) with jt/jf as label names or ints

    def op(code, k, jt=0, jf=0):
        prog.append([code, jt, jf, k])

    op(LD, 4)  # seccomp_data.arch
    op(JEQ, arch, 0, "enosys")  # another ABI (i386 on x86_64): nothing allowed
    op(LD, 0)  # seccomp_data.nr
    if arch == 0xC000003E:
        op(JSET, 0x40000000, "enosys", 0)  # the x32 ABI's numbers
    for nr in eperm:
        op(JEQ, nr, "eperm", 0)
    for nr in enosys:
        op(JEQ, nr, "enosys", 0)
    for nr in no_userns:
        op(JEQ, nr, "flags", 0)
    labels = {}
    op(RET, ALLOW)
    labels["flags"] = len(prog)
    op(LD, 16)  # low 32 bits of args[0]
    op(JSET, CLONE_NEWUSER, "eperm", 0)
    op(RET, ALLOW)
    labels["eperm"] = len(prog)
    op(RET, ERRNO | errno.EPERM)
    labels["enosys"] = len(prog)
    op(RET, ERRNO | errno.ENOSYS)
    out = b""
    for i, (code, jt, jf, k) in enumerate(prog):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        out += struct.pack("HBBI", code, jt, jf, k)
    return out


def prepare_seccomp() -> bool:
    """Build the filter (ctypes structures kept alive for the process's life); False on an unknown architecture."""
    global _SECCOMP
    if _SECCOMP is None:
        import ctypes

        code = seccomp_filter_bytes()
        if code is None:
            return False
        buf = ctypes.create_string_buffer(code, len(code))

        class Fprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        _SECCOMP = (Fprog(len(code) // 8, ctypes.addressof(buf)), buf)
    return True


def install_seccomp() -> None:
    """After PR_SET_NO_NEW_PRIVS: deny keyrings, user namespaces and foreign ABIs to this process and all it forks."""
    if _SECCOMP is None:
        return
    import ctypes

    lib = linux.libc()
    nr = _SECCOMP_SYSCALL.get(os.uname().machine)
    # SPEC_ALLOW: a filter changes nothing about speculation mitigations (older kernels force
    # SSBD on every filtered task), so programs run exactly as fast as before the filter.
    if nr is not None and lib.syscall(ctypes.c_long(nr), ctypes.c_long(1), ctypes.c_long(4), ctypes.c_void_p(ctypes.addressof(_SECCOMP[0]))) == 0:
        return
    linux._check(lib.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(_SECCOMP[0]), 0, 0), "seccomp")
