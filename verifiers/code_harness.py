"""The program that runs assert-style tests inside the sandbox, with the candidate kept apart.

This file is shipped as the *source* of a sandboxed Python run (standard library only, runs on
Python 3.8+), which is why codec, framing, candidate and tester live in this one file; the host
imports it for the codec and the MAC (the test plan it runs comes from
:mod:`~rlvr.verifiers.code_plan`). Inside one run there are two processes:

* **tester** (this file as ``__main__``): first makes itself non-dumpable (no other process of
  the run's uid may then read its memory, open its file descriptors or ptrace it), starts the
  candidate, then reads the instrumented test code and a per-run MAC key from stdin into memory
  (they never touch the disk), runs the tests and writes one MAC'd record per test to stdout.
* **candidate** (``main.py --candidate solution.py``): a freshly exec'd interpreter (so it holds
  none of the tester's memory, which the sandbox filled with the request before the fork),
  stdin and stdout on pipes to the tester, stderr on /dev/null. It loads the model's program as
  module ``solution`` and serves calls.

The test code calls stubs. Arguments go to the candidate with ``marshal`` (the tester is
trusted); answers come back as JSON of a tagged form of plain data (None, bool, int, float,
complex, str, bytes, bytearray, list, tuple, dict, set, frozenset; exact types only, never
subclasses), decoded by the tester into fresh built-in objects. So an ``__eq__`` that is always
True, a patched ``builtins``, a redefined ``check`` or a swallowed ``AssertionError`` all stay in
the candidate's own process. A candidate that exits, crashes or kills the tester produces no
verdict for the tests it did not pass; the host counts a test as passed only on a record whose
keyed BLAKE2b MAC (under a key only the tester and the host know) checks out.
"""

import os
import sys

MAX_FRAME = 16 << 20  # a reply larger than this is not plain test data
MAX_DEPTH = 100
RECORD_PREFIX = "@rlvr "
FATAL_EXIT = 3  # the tester could not set itself up
SOLUTION_FILE = "solution.py"  # next to this file in the run's work directory
MAC_BYTES = 32
HOOK_BEGIN, HOOK_END, HOOK_EXC = "__rlvr_begin", "__rlvr_end", "__rlvr_e"


class Unsupported(TypeError):
    """A value that is not plain data and cannot cross between tester and candidate."""


# --------------------------------------------------------------------------- codec (candidate -> tester)

_FLOAT_WORDS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def encode(value):
    """Plain data -> JSON text of its tagged form (no ``json`` import: the candidate starts faster)."""
    out = []
    _encode(value, 0, out)
    return "".join(out)


def _float(x):
    text = repr(x)
    return _FLOAT_WORDS.get(text, text)


def _encode(value, depth, out):
    t = type(value)
    if value is None:
        out.append("null")
    elif t is bool:
        out.append("true" if value else "false")
    elif t is int:
        out.append(str(value))
    elif t is float:
        out.append(_float(value))
    elif t is str:
        out.append('["u","%s"]' % value.encode("utf-8", "surrogatepass").hex())
    elif t is bytes or t is bytearray:
        out.append('["%s","%s"]' % ("b" if t is bytes else "y", bytes(value).hex()))
    elif t is complex:
        out.append('["c",%s,%s]' % (_float(value.real), _float(value.imag)))
    elif depth >= MAX_DEPTH:
        raise Unsupported("a value nested more than %d levels deep" % MAX_DEPTH)
    elif t is list or t is tuple or t is set or t is frozenset:
        out.append('["%s"' % {list: "l", tuple: "t", set: "s", frozenset: "f"}[t])
        for v in value:
            out.append(",")
            _encode(v, depth + 1, out)
        out.append("]")
    elif t is dict:
        out.append('["d"')
        for k, v in value.items():
            out.append(",")
            _encode(k, depth + 1, out)
            out.append(",")
            _encode(v, depth + 1, out)
        out.append("]")
    else:
        raise Unsupported("an object of type %s" % _type_name(t))


def decode(obj, depth=0):
    """Parsed JSON of the tagged form -> fresh built-in objects; ValueError on anything else."""
    t = type(obj)
    if obj is None or t is bool or t is int or t is float:
        return obj
    if t is not list or not obj or type(obj[0]) is not str or depth > MAX_DEPTH + 1:
        raise ValueError("not an encoded value")
    tag, items, d = obj[0], obj[1:], depth + 1
    if tag == "u" and len(items) == 1 and type(items[0]) is str:
        return bytes.fromhex(items[0]).decode("utf-8", "surrogatepass")
    if tag == "l":
        return [decode(v, d) for v in items]
    if tag == "t":
        return tuple(decode(v, d) for v in items)
    if tag == "s":
        return set(decode(v, d) for v in items)
    if tag == "f":
        return frozenset(decode(v, d) for v in items)
    if tag == "d" and len(items) % 2 == 0:
        out = {}
        for i in range(0, len(items), 2):
            out[decode(items[i], d)] = decode(items[i + 1], d)
        return out
    if tag in ("b", "y") and len(items) == 1 and type(items[0]) is str:
        data = bytes.fromhex(items[0])
        return data if tag == "b" else bytearray(data)
    if tag == "c" and len(items) == 2 and all(type(x) in (int, float) for x in items):
        return complex(items[0], items[1])
    raise ValueError("malformed value (tag %r)" % tag[:20])


def _type_name(t):
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", None)
    return name[:80] if type(name) is str else "?"


def short_repr(value, limit=200):
    """repr() of plain data, capped."""
    try:
        text = repr(value)
    except Exception:  # a value from test code whose repr fails
        text = "<unprintable %s>" % _type_name(type(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _safe_str(e):
    try:
        text = str(e)
    except BaseException:
        text = ""
    return text[:500] if type(text) is str else ""


def _unlimited_int_digits():
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)


# --------------------------------------------------------------------------- records


def record_line(key, record):
    """One MAC'd output line for ``record`` (a JSON-able dict)."""
    import json

    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "\n%s%s %s\n" % (RECORD_PREFIX, mac(key, body.encode("ascii")), body)


def mac(key, data):
    """Keyed BLAKE2b of ``data`` as hex (``_blake2`` directly: hashlib would load OpenSSL first)."""
    from _blake2 import blake2b

    return blake2b(data, digest_size=MAC_BYTES, key=key).hexdigest()


# --------------------------------------------------------------------------- framing


def write_frame(fd, data, deadline=None):
    """Send one length-prefixed frame of bytes; with a deadline, never block past it."""
    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        if deadline is not None:
            _wait(fd, deadline, write=True)
            n = os.write(fd, view[: 1 << 16])
        else:
            n = os.write(fd, view)
        view = view[n:]


def read_frame(fd, deadline=None):
    """Read one frame's bytes (None at end of file); TimeoutError past the deadline, ValueError if too big."""
    head = _read_exact(fd, 4, deadline)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > MAX_FRAME:
        raise ValueError("a frame of %d bytes is over the %d byte cap" % (size, MAX_FRAME))
    return _read_exact(fd, size, deadline)


def _wait(fd, deadline, write=False):
    import select
    import time

    left = deadline - time.monotonic()
    ready = select.select([], [fd], [], max(left, 0)) if write else select.select([fd], [], [], max(left, 0))
    if left <= 0 or not (ready[1] if write else ready[0]):
        raise TimeoutError("timed out")


def _read_exact(fd, n, deadline):
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            _wait(fd, deadline)
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- candidate side


def candidate_main(path, import_path):
    """Load the program as module ``solution`` and serve calls until end of input."""
    import marshal
    import types

    sys.path[:] = [p for p in import_path.split("\n") if p]
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    _unlimited_int_digits()

    def reply(message):
        try:
            data = encode(message)
        except Unsupported as e:
            data = encode(("unsupported", str(e)))
        except RecursionError:
            data = encode(("unsupported", "a value nested too deeply"))
        write_frame(proto_out, data.encode("ascii"))

    module = types.ModuleType("solution")
    module.__file__ = path
    sys.modules["solution"] = module
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            source = f.read()
        exec(compile(source, path, "exec"), module.__dict__)
    except BaseException as e:  # anything the program does while loading is its own failure
        reply(("load_error", _describe_load_error(e, path)))
        return
    reply(("ready", sorted(k for k, v in list(module.__dict__.items()) if type(k) is str and not k.startswith("__") and callable(v))))
    while True:
        frame = read_frame(proto_in)
        if frame is None:
            return
        name, args, kwargs = marshal.loads(frame)
        try:
            result = module.__dict__[name](*args, **kwargs)
        except BaseException as e:
            reply(("raised", _type_name(type(e)), _safe_str(e)))
            continue
        reply(("value", result))


def _describe_load_error(e, path):
    if isinstance(e, SyntaxError):
        line = (e.text or "").strip()
        where = " (line %s)" % e.lineno if e.lineno else ""
        return "%s: %s%s%s" % (type(e).__name__, e.msg, where, (": " + line[:120]) if line else "")
    if isinstance(e, SystemExit):
        return "the program called exit() while it was being loaded"
    lineno = None
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    where = " (line %s)" % lineno if lineno else ""
    return "%s: %s%s" % (_type_name(type(e)), _safe_str(e)[:300], where)


# --------------------------------------------------------------------------- tester side


class Garbled(Exception):
    """The candidate's channel carried something that is not a well-formed message."""


class CandidateFault(BaseException):
    """The candidate timed out, crashed or answered with something that is not data.

    A BaseException, so test code's ``except Exception`` cannot swallow it.
    """

    def __init__(self, verdict, message):
        BaseException.__init__(self, message)
        self.verdict = verdict
        self.message = message


class Tester:
    """Runs the planned tests against a candidate process and emits MAC'd records."""

    def __init__(self, out_fd):
        import time

        self._time = time
        self.main_path = os.path.abspath(sys.argv[0])  # the run executes this file from its work dir
        self.solution_path = os.path.join(os.path.dirname(self.main_path), SOLUTION_FILE)
        self.out_fd = out_fd
        self.key = b""
        self.plan = {}
        self.entry_point = None
        self.time_limit = 1.0
        self.stop_first = False
        self.pid = None
        self.to_child = self.from_child = None
        self.child_started = 0.0
        self.start_problem = None
        self.names = set()
        self.verdicts = {}
        self.current = None
        self.deadline = None
        self.fault = None
        self.last_call = None
        self.last_shown = ""  # the call in progress or last made, and what came of it: for feedback
        self.last_result = ""
        self.raised = None
        self.stopped = False
        self.t0 = 0.0

    def configure(self, payload):
        """Take the run's secrets and settings (read from stdin after the candidate started)."""
        self.key = bytes.fromhex(payload["key"])
        self.plan = payload["plan"]
        self.entry_point = payload.get("entry_point")
        self.time_limit = float(payload["time_limit_s"])
        self.stop_first = bool(payload.get("stop_at_first_failure"))

    def emit(self, record):
        line = record_line(self.key, record).encode("ascii")
        while line:
            line = line[os.write(self.out_fd, line):]

    # -- the candidate process
    def spawn(self, deadline):
        """Start a fresh candidate and wait for it to load; (verdict, message) on failure, else None."""
        return self.start_child() or self.await_ready(deadline)

    def start_child(self):
        """Start the candidate process (it loads the program while the tester prepares)."""
        self.child_started = self._time.monotonic()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        # Every fd of ours is close-on-exec but 0-2, which these actions replace. -S: no site
        # import (a third of the start-up); the child gets the tester's import path instead.
        argv = [sys.executable, "-I", "-S", self.main_path, "--candidate", self.solution_path, "\n".join(sys.path)]
        actions = [(os.POSIX_SPAWN_DUP2, req_r, 0), (os.POSIX_SPAWN_DUP2, rep_w, 1), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        try:
            try:
                self.pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=actions, setsid=True)
            except NotImplementedError:  # a libc without POSIX_SPAWN_SETSID
                self.pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=actions)
        except OSError as e:  # e.g. the process limit, used up by an earlier call's fork bomb
            for fd in (req_r, req_w, rep_r, rep_w):
                os.close(fd)
            return "error", "could not start the program: %s" % e
        os.close(req_r)
        os.close(rep_w)
        self.to_child, self.from_child = req_w, rep_r
        return None

    def receive(self, deadline):
        """The child's next message as a tuple, None once it is gone; TimeoutError, or Garbled for anything else."""
        import json

        try:
            frame = read_frame(self.from_child, deadline)
        except TimeoutError:
            raise
        except OSError:
            return None
        except ValueError:
            raise Garbled() from None
        if frame is None:
            return None
        try:
            message = decode(json.loads(frame.decode("ascii")))
        except (ValueError, TypeError, RecursionError, MemoryError):
            raise Garbled() from None
        if type(message) is tuple and message and type(message[0]) is str:
            return message
        raise Garbled()

    def await_ready(self, deadline):
        """Wait for the started candidate's load report; (verdict, message) on failure, else None."""
        try:
            ready = self.receive(deadline)
        except TimeoutError:
            self.kill_child()
            return "timeout", "the program did not finish loading within %gs" % self.time_limit
        except Garbled:
            self.kill_child()
            return "error", "the program wrote into the test harness's channel while loading"
        if ready is None:
            return "error", "the program's process ended while loading%s" % _exit_text(self.kill_child())
        if ready[0] == "ready" and len(ready) == 2 and type(ready[1]) is list:
            self.names = set(n for n in ready[1] if type(n) is str)
            return None
        self.kill_child()
        message = ready[1] if ready[0] == "load_error" and len(ready) == 2 and type(ready[1]) is str else "?"
        return "error", "the program failed to load: %s" % message[:400]

    def kill_child(self):
        """Kill the candidate (and its session) and return its exit code (negative: signal)."""
        pid, self.pid = self.pid, None
        for fd in (self.to_child, self.from_child):
            if fd is not None:
                os.close(fd)
        self.to_child = self.from_child = None
        if pid is None:
            return None
        import signal

        for target, kill in ((pid, os.killpg), (pid, os.kill)):
            try:
                kill(target, signal.SIGKILL)
            except OSError:
                pass
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return None
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def call(self, name, args, kwargs):
        """One call into the candidate: plain data out, fresh plain data back."""
        import marshal

        if self.fault is not None:
            raise CandidateFault(self.fault[0], self.fault[1])
        try:
            request = marshal.dumps((name, tuple(args), dict(kwargs)))
        except ValueError:
            kinds = ", ".join(sorted(set(_type_name(type(a)) for a in list(args) + list(kwargs.values()))))
            raise TypeError("cannot pass these arguments (%s) to the program: only plain data crosses to it" % kinds) from None
        shown = "%s(%s)" % (name, ", ".join([short_repr(a, 60) for a in args] + ["%s=%s" % (k, short_repr(v, 60)) for k, v in kwargs.items()]))
        deadline = self.deadline if self.deadline is not None else self._time.monotonic() + self.time_limit
        self.last_shown, self.last_result = shown, ""
        if self.pid is None:
            problem = self.spawn(deadline)
            if problem is not None:
                self._fault(problem[0], problem[1])
        try:
            write_frame(self.to_child, request, deadline)
            reply = self.receive(deadline)
        except TimeoutError:
            self.kill_child()
            self._fault("timeout", "%s did not return within %gs" % (shown, self.time_limit))
        except Garbled:
            self.kill_child()
            self._fault("error", "the program wrote into the test harness's channel during %s" % shown)
        except OSError:
            reply = None
        if reply is None:
            self._fault("error", "the program's process ended during %s%s" % (shown, _exit_text(self.kill_child())))
        if reply[0] == "value" and len(reply) == 2:
            self.last_result = "returned %s" % short_repr(reply[1])
            self.last_call = "%s %s" % (shown, self.last_result)
            return reply[1]
        if reply[0] == "raised" and len(reply) == 3 and type(reply[1]) is str and type(reply[2]) is str:
            self.last_result = "raised %s: %s" % (reply[1][:80], reply[2][:300])
            what = "%s %s" % (shown, self.last_result)
            self.last_call = what
            self.raised = _exception(reply[1], what)
            raise self.raised
        if reply[0] == "unsupported" and len(reply) == 2 and type(reply[1]) is str:
            self._fault("error", "%s returned %s, not plain data (numbers, strings, lists, tuples, dicts, sets)" % (shown, reply[1][:120]))
        self._fault("error", "%s answered with a malformed message" % shown)

    def _fault(self, verdict, message):
        self.fault = (verdict, message)
        self.last_result = message
        raise CandidateFault(verdict, message)

    def stub(self, name):
        """A function the test code calls in place of the program's ``name``."""
        tester = self

        def candidate(*args, **kwargs):
            return tester.call(name, args, kwargs)

        candidate.__name__ = candidate.__qualname__ = name
        return candidate

    # -- hooks the instrumented test code calls
    def begin(self, k):
        if self.stopped:
            return False
        self.current, self.fault, self.last_call, self.raised = k, None, None, None
        self.last_shown, self.last_result = "", ""
        self.t0 = self._time.monotonic()
        self.deadline = self.t0 + self.time_limit
        return True

    def end(self, k, exc):
        ms = round((self._time.monotonic() - self.t0) * 1000.0, 3)
        if self.fault is not None:
            verdict, message = self.fault
        elif exc is None:
            verdict, message = "pass", ""
        elif exc is self.raised:  # the program's own exception, already described
            verdict, message = "error", self.last_call or ""
        elif isinstance(exc, AssertionError):
            verdict, message = "wrong", _safe_str(exc)[:200]
        else:
            verdict, message = "error", "%s: %s" % (_type_name(type(exc)), _safe_str(exc)[:300])
        if verdict != "pass" and self.last_call and self.last_call not in message:
            message = (message + "; " if message else "") + self.last_call
        self.record(k, verdict, message, ms, self.last_shown, self.last_result)
        self.current, self.deadline, self.fault = None, None, None

    def record(self, k, verdict, message, ms=0.0, call="", result=""):
        if k in self.verdicts:
            return
        self.verdicts[k] = verdict
        self.emit({"t": k, "v": verdict, "m": message[:600], "ms": ms, "c": call[:400], "r": result[:400]})
        if verdict != "pass" and self.stop_first:
            self.stopped = True

    # -- the whole run
    def run(self):
        import builtins

        labels = self.plan["labels"]
        code = compile(self.plan["code"], "<tests>", "exec", dont_inherit=True, optimize=0)  # asserts stay, whatever -O says
        problem = self.start_problem or self.await_ready(self.child_started + self.time_limit)
        if problem is None and self.entry_point and self.entry_point not in self.names:
            problem = ("error", "the program defines no function named %r" % self.entry_point)
        if problem is not None:
            self.emit({"load": problem[1], "v": problem[0]})
            self.emit({"done": len(labels)})
            return
        namespace = {"__name__": "__rlvr_tests__", "__builtins__": builtins, HOOK_BEGIN: self.begin, HOOK_END: self.end}
        for name in self.plan["free_names"]:
            if name in self.names:
                namespace[name] = self.stub(name)
        aborted = ""
        try:
            exec(code, namespace)
            if self.plan["has_check"]:
                namespace["check"](self.stub(self.entry_point))
        except BaseException as e:  # raised outside any test statement: the later tests cannot run
            aborted = e.message if isinstance(e, CandidateFault) else "%s: %s" % (_type_name(type(e)), _safe_str(e)[:300])
        for k in range(len(labels)):
            if k not in self.verdicts:
                reason = ("the tests stopped before this one: " + aborted) if aborted else ("stopped at the first failure" if self.stopped else "not reached")
                self.emit({"t": k, "v": "not_run", "m": reason[:600], "ms": 0.0})
        self.kill_child()
        self.emit({"done": len(labels)})


def _exit_text(code):
    if code is None:
        return ""
    if code < 0:
        import signal

        try:
            return " (killed by %s)" % signal.Signals(-code).name
        except ValueError:
            return " (killed by signal %d)" % -code
    return " (exit code %d)" % code


def _exception(kind, message):
    import builtins

    cls = getattr(builtins, kind, None)
    # StopIteration would end the test code's loop or generator instead of failing the test
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, (StopIteration, StopAsyncIteration)):
        try:
            return cls(message)
        except Exception:
            pass
    return RuntimeError(message)


def _undumpable():
    """PR_SET_DUMPABLE 0: same-uid processes can no longer read our memory, open our fds or ptrace us."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(4, 0, 0, 0, 0) == 0 and libc.prctl(3, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE, PR_GET_DUMPABLE


def _inside(path, directory):
    directory = os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def tester_main():
    """Entry point of the tester (see the module docstring)."""
    import json
    import signal

    if not sys.platform.startswith("linux") or not _undumpable():
        os.write(2, b"rlvr-harness: cannot make the tester non-dumpable\n")
        os._exit(FATAL_EXIT)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a dead candidate is an OSError on write, not our death
    _unlimited_int_digits()
    # The candidate can write to the work dir and the temp dirs: nothing is imported from them.
    private = (os.path.dirname(os.path.abspath(sys.argv[0])), "/tmp", "/var/tmp", "/dev/shm")
    sys.path[:] = [p for p in sys.path if p and os.path.isabs(p) and not any(_inside(os.path.realpath(p), d) for d in private)]
    sys.path_importer_cache.clear()
    out_fd = os.dup(1)
    tester = Tester(out_fd)
    tester.start_problem = tester.start_child()  # it loads the program while we read and prepare
    payload = json.loads(sys.stdin.buffer.read().decode("utf-8", "surrogateescape"))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # the test code's own prints must not fill (or forge) the record stream
    sys.stdout = open(os.devnull, "w")
    try:
        tester.configure(payload)
        tester.run()
    except BaseException as e:  # a harness failure: say so (MAC'd once the key is known), never a silent verdict
        if tester.key:
            tester.emit({"fatal": "%s: %s" % (_type_name(type(e)), _safe_str(e))})
        else:
            os.write(2, ("rlvr-harness: %s\n" % e).encode("utf-8", "replace"))
            tester.kill_child()
            os._exit(FATAL_EXIT)
    tester.kill_child()
    os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--candidate":
        candidate_main(sys.argv[2], sys.argv[3])
        os._exit(0)
    tester_main()
