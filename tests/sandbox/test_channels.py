"""No channel between runs: what one run leaves, a later (or concurrent) run on the same warm workers cannot find.

A policy optimised against a reward will use any state that survives a run to pass answers
from one rollout to the next. The writer (``channel_programs.WRITER``) tries files anywhere
writable (nested too), kernel keyrings, sockets (TIME_WAIT, listeners and abstract sockets
held by a daemon), pids and fork counts, System V and POSIX IPC, the environment, cgroup,
/proc and /sys; the reader looks for all of it. bwrap and docker claim isolation; local does
only where it can give each run its own namespaces (root), and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from rlvr.sandbox import Limits, Program, Sandbox
from rlvr.sandbox.zygote import linux

from .channel_programs import READER, WRITER
from .conftest import BACKENDS, require

LIMITS = Limits(time_limit_s=30, memory_mb=512, max_processes=64, disk_mb=32, max_output_bytes=200_000)


def _isolating(backend: str) -> None:
    require(backend)
    if backend == "local":
        from rlvr.sandbox.backends.local import _per_run_namespaces

        if not _per_run_namespaces():
            pytest.skip("local without per-run namespaces (not root, or the kernel refuses them) does not claim isolation")


def _write(sb: Sandbox, tok: str) -> dict:
    r = sb.run(Program("python", WRITER, stdin=tok))
    assert r.status == "ok", (r.status, r.detail, r.stderr[-2000:])
    return json.loads(r.stdout)


def _read(sb: Sandbox, toks: list[str]) -> dict:
    r = sb.run(Program("python", READER, stdin=" ".join(toks)))
    assert r.status == "ok", (r.status, r.detail, r.stderr[-2000:])
    return json.loads(r.stdout)


@pytest.fixture(params=BACKENDS)
def isolating(request) -> str:
    _isolating(request.param)
    return request.param


def test_a_later_run_on_the_same_worker_finds_nothing_the_writer_left(isolating):
    with Sandbox(isolating, LIMITS, concurrency=1) as sb:
        baseline = _read(sb, ["0" * 12])
        tok = os.urandom(6).hex()
        wrote = _write(sb, tok)
        # The writer did get to write in its own run: the test measures survival, not permission.
        assert {"time_wait", "forks", "daemon"} <= set(wrote["done"]) and any(d.startswith("file /tmp") for d in wrote["done"])
        after = _read(sb, [tok])
    assert after["found"] == []
    assert after["pid"] == baseline["pid"], "the reader's pid moved with the writer's forks: a pid counter channel"
    assert after["sockets"] == 0


def test_keyrings_and_new_user_namespaces_are_refused_to_programs(isolating):
    src = ("import ctypes\nl = ctypes.CDLL(None, use_errno=True)\n"
           "print(l.syscall(248, b'user', b'k', b'v', 1, -4), ctypes.get_errno())\n"
           "print(l.unshare(0x10000000), ctypes.get_errno())")
    with Sandbox(isolating, LIMITS, concurrency=1) as sb:
        r = sb.run(Program("python", src))
    assert r.status == "ok" and r.stdout.split() == ["-1", "1", "-1", "1"]  # EPERM both


def test_threads_still_work_under_the_filter(isolating):
    cpp = "#include <iostream>\n#include <thread>\nint main(){int x=0;std::thread t([&]{x=41;});t.join();std::cout<<x+1<<std::endl;}\n"
    with Sandbox(isolating, LIMITS, concurrency=1) as sb:
        r = sb.run(Program("cpp", cpp))
        p = sb.run(Program("python", "import threading\nout=[]\nt=threading.Thread(target=lambda: out.append(42))\nt.start(); t.join(); print(out[0])"))
        js = sb.run(Program("javascript", "const {Worker}=require('worker_threads');new Worker('require(\"worker_threads\").parentPort.postMessage(42)',{eval:true}).on('message',m=>console.log(m))"))
    assert (r.status, r.stdout) == ("ok", "42\n")
    assert (p.status, p.stdout) == ("ok", "42\n")
    assert (js.status, js.stdout) == ("ok", "42\n"), js.stderr[-500:]


def test_loopback_works_inside_a_run(isolating):
    src = ("import socket\ns=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
           "c=socket.create_connection(s.getsockname()); a,_=s.accept(); c.sendall(b'hi'); print(a.recv(2).decode())")
    with Sandbox(isolating, LIMITS, concurrency=1) as sb:
        r = sb.run(Program("python", src))
    assert (r.status, r.stdout) == ("ok", "hi\n"), r.stderr[-500:]


@pytest.mark.slow
def test_eight_runs_in_flight_share_nothing(isolating):
    """8 writers, then 8 readers, then writers and readers interleaved 16 deep, on 8 warm workers."""
    with Sandbox(isolating, LIMITS, concurrency=8) as sb:
        sb.warmup()
        baseline = _read(sb, ["0" * 12])["pid"]
        toks = [os.urandom(6).hex() for _ in range(8)]
        writers = sb.run_many([Program("python", WRITER, stdin=t) for t in toks], concurrency=8)
        assert all(r.status == "ok" for r in writers), [(r.status, r.detail) for r in writers]
        readers = sb.run_many([Program("python", READER, stdin=" ".join(toks)) for _ in range(8)], concurrency=8)
        more = [os.urandom(6).hex() for _ in range(8)]
        mixed = []
        for t in more:
            mixed += [Program("python", WRITER, stdin=t), Program("python", READER, stdin=" ".join(toks + more))]
        both = sb.run_many(mixed, concurrency=8)
    for r in readers + both[1::2]:
        assert r.status == "ok", (r.status, r.detail, r.stderr[-1000:])
        out = json.loads(r.stdout)
        assert out["found"] == [] and out["pid"] == baseline and out["sockets"] == 0, out


# ------------------------------------------------------------------ compile outputs

C_HELLO = '#include <stdio.h>\n#include <unistd.h>\n#include <stdlib.h>\nint main(int argc, char **argv){%s puts("hello"); return 0;}\n'
REPLACE_WITH_SCRIPT = 'unlink("main"); FILE *f = fopen("main", "w"); fputs("#!/bin/sh\\necho POISONED\\n", f); fclose(f); chmod("main", 0755);'
REPLACE_WITH_LINK = 'unlink("main"); symlink("/proc/self/pagemap", "main");'


@pytest.mark.parametrize("sabotage", [REPLACE_WITH_SCRIPT, REPLACE_WITH_LINK], ids=["script", "pagemap-link"])
def test_a_run_that_replaces_its_own_binary_does_not_poison_the_compile_cache(backend, sabotage):
    src = "#include <sys/stat.h>\n" + C_HELLO % sabotage
    with Sandbox(backend, LIMITS, concurrency=1) as sb:
        first = sb.run(Program("c", src))
        assert (first.status, first.stdout) == ("ok", "hello\n"), (first.status, first.detail, first.stderr)
        assert len(sb.compile_cache) == 1
        again = [sb.run(Program("c", src)) for _ in range(2)]
    assert [(r.status, r.stdout) for r in again] == [("ok", "hello\n")] * 2
    assert sb.compile_cache.hits == 2


def _linking_language(target: str):
    from rlvr.sandbox import languages as L

    name = f"linker-{os.urandom(3).hex()}"
    return L.Language(name=name, source_file="main.txt", compile=("ln", "-s", target, "main"), run=("./main",), artifact="main")


@pytest.mark.parametrize("target", ["/etc/shadow", "/proc/kmsg", "/proc/self/pagemap"])
def test_a_compile_step_that_leaves_a_link_is_never_followed(backend, target, monkeypatch):
    from rlvr.sandbox import languages as L

    lang = _linking_language(target)
    monkeypatch.setitem(L._LANGUAGES, lang.name, lang)
    L.LANGUAGES.register(lang.name, lang)
    try:
        with Sandbox(backend, LIMITS, concurrency=1) as sb:
            r = sb.run(Program(lang.name, "x"))
            entries = list(sb.compile_cache._data.values())
    finally:
        L.LANGUAGES.unregister(lang.name)
    assert r.status != "timeout"  # /proc/kmsg blocks a reader forever: never opened
    assert not any(isinstance(e, bytes) for e in entries), "a link's target reached the compile cache"


def test_read_run_file_refuses_links_fifos_and_files_of_others(tmp_path):
    uid = os.getuid()
    (tmp_path / "ok").write_bytes(b"data")
    os.symlink("/etc/passwd", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "d").mkdir()
    os.symlink("/etc", tmp_path / "dl")
    assert linux.read_run_file(str(tmp_path), "ok", uid, 100) == (b"data", None)
    for name in ("link", "fifo", "dl/passwd", "missing"):
        data, why = linux.read_run_file(str(tmp_path), name, uid, 100)
        assert data is None and why, name
    assert linux.read_run_file(str(tmp_path), "ok", uid + 1, 100)[0] is None  # not the run's own file
    assert linux.read_run_file(str(tmp_path), "ok", uid, 2)[0] is None  # over the cap
    os.link(tmp_path / "ok", tmp_path / "hard")
    assert linux.read_run_file(str(tmp_path), "ok", uid, 100)[0] is None  # a second link: maybe someone else's file


# ------------------------------------------------------------------ local: cleaning without privileges or links

@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand files to another uid")
def test_wipe_owned_deletes_a_runs_entries_at_any_depth_and_nothing_else(tmp_path):
    from rlvr.sandbox.zygote.strategies import wipe_owned

    run_uid, other = 1_999_999_001, 1_999_999_002
    shared = tmp_path / "shared"  # like /tmp/.X11-unix: world-writable, not the run's
    (shared / "deeper").mkdir(parents=True)
    for d in (shared, shared / "deeper"):
        d.chmod(0o1777)
    outside = tmp_path / "outside-target"
    outside.mkdir()
    (outside / "keep").write_text("k")
    planted = {shared / "deeper" / "note": run_uid, shared / "theirs": other, tmp_path / "top": run_uid}
    for path, owner in planted.items():
        path.write_text("x")
        os.chown(path, owner, owner)
    link = shared / "deeper" / "link"
    os.symlink(outside, link)
    os.lchown(link, run_uid, run_uid)
    wipe_owned([str(tmp_path)], run_uid)
    assert not (shared / "deeper" / "note").exists() and not (tmp_path / "top").exists()
    assert not os.path.lexists(link) and (outside / "keep").exists()  # the link went, not what it pointed at
    assert (shared / "theirs").exists() and stat.S_ISDIR(os.lstat(shared / "deeper").st_mode)


@pytest.mark.docker
def test_docker_workers_that_cannot_mount_fall_back_to_a_cleaned_shared_world(monkeypatch, caplog):
    require("docker")
    from rlvr.sandbox.backends import docker as D

    monkeypatch.setattr(D, "CAPS", [c for c in D.CAPS if c != "SYS_ADMIN"])  # as under AppArmor's docker-default
    with caplog.at_level("WARNING", logger="rlvr.sandbox.backends.docker"), Sandbox("docker", LIMITS, concurrency=1) as sb:
        tok = os.urandom(6).hex()
        r = sb.run(Program("python", f"open('/tmp/{tok}', 'w').write('x'); print(2 + 2)"))
        after = _read(sb, [tok])
    assert (r.status, r.stdout) == ("ok", "4\n")
    assert not [f for f in after["found"] if tok in f]
    assert any("cannot give each run its own namespaces" in m for m in caplog.messages)


NETNS = Program("python", "import os\nprint(os.readlink('/proc/self/ns/net'))")
USES_NETWORK = Program("python", "import socket\ns=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\nsocket.create_connection(s.getsockname())\nprint('ok')")


def test_runs_share_a_network_namespace_only_while_no_run_has_used_it(isolating):
    with Sandbox(isolating, LIMITS, concurrency=1) as sb:
        quiet = {sb.run(NETNS).stdout for _ in range(3)}
        assert sb.run(USES_NETWORK).stdout == "ok\n"
        after = sb.run(NETNS).stdout
    assert len(quiet) == 1 and after not in quiet


def test_fresh_network_gives_every_run_its_own_namespace(isolating):
    with Sandbox(isolating, LIMITS, concurrency=1, fresh_network=True) as sb:
        seen = [sb.run(NETNS).stdout for _ in range(3)]
        reader = _read(sb, ["0" * 12])
    assert len(set(seen)) == 3 and reader["found"] == []


def test_fresh_network_must_be_a_bool():
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="fresh_network"):
        Sandbox("local", fresh_network="yes")
