"""A "writer" that tries to leave a token in every place a later run might look, and the "reader" that looks.

Both are plain Python programs run inside the sandbox, the token on stdin. The writer reports
which channels it managed to write *inside its own run* (a sandbox may let a run write its own
/tmp; what matters is that nothing survives it); the reader prints a JSON object listing every
trace of the token (or of any earlier run) it found, plus facts a counter channel would move
(its own pid, its network namespace's socket count). Timing and global kernel counters that
every process on the host shares (load average, free memory) are out of scope.
"""

WRITER = r'''
import ctypes, ctypes.util, json, os, socket, subprocess, sys, time
tok = sys.stdin.read().strip()
done = []
libc = ctypes.CDLL(None, use_errno=True)

def attempt(name, fn):
    try:
        fn()
        done.append(name)
    except Exception:
        pass

def put(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(tok)

# files: the usual temp dirs (nested too), the home and work dirs, and every writable dir found
for top in ("/tmp", "/var/tmp", "/dev/shm", os.environ.get("HOME", "/tmp"), os.getcwd(), os.environ.get("TMPDIR", "/tmp")):
    attempt("file " + top, lambda top=top: put(f"{top}/rlvr-{tok}"))
    attempt("nested " + top, lambda top=top: put(f"{top}/.hidden-{tok}/a/b/rlvr-{tok}"))
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/usr")) or root.count("/") > 4:
        dirs[:] = []
        continue
    if os.access(root, os.W_OK):
        attempt("writable " + root, lambda root=root: put(os.path.join(root, f"rlvr-w-{tok}")))
# kernel keyrings: user, session, process, user-session
for ring in (-4, -3, -2, -5):
    attempt(f"key {ring}", lambda ring=ring: libc.syscall(248, b"user", f"rlvr-{tok}".encode(), tok.encode(), len(tok), ring) >= 0 or (_ for _ in ()).throw(OSError()))
# sockets: a connection left in TIME_WAIT, a listener and an abstract socket kept by a daemon
def time_wait():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    c = socket.create_connection(s.getsockname()); a, _ = s.accept(); a.close(); c.close(); s.close()
attempt("time_wait", time_wait)
daemon = (
    "import socket,time,os\n"
    f"u=socket.socket(socket.AF_UNIX);u.bind('\\0rlvr-{tok}');u.listen()\n"
    "t=socket.socket();t.bind(('127.0.0.1',0));t.listen()\n"
    "time.sleep(600)\n"
)
attempt("daemon", lambda: subprocess.Popen([sys.executable, "-c", daemon], start_new_session=True, stdin=subprocess.DEVNULL))
# pids and counters: fork many
def forks():
    for _ in range(40):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
attempt("forks", forks)
# System V IPC
key = int(tok[:6], 16) + 1  # never IPC_PRIVATE (0)
attempt("shm", lambda: libc.shmget(key, 4096, 0o1666) >= 0 or (_ for _ in ()).throw(OSError()))
attempt("msg", lambda: libc.msgget(key, 0o1666) >= 0 or (_ for _ in ()).throw(OSError()))
attempt("sem", lambda: libc.semget(key, 1, 0o1666) >= 0 or (_ for _ in ()).throw(OSError()))
# POSIX IPC: a message queue and a named semaphore (a file in /dev/shm)
libc.mq_open.restype = ctypes.c_int
attempt("mq", lambda: libc.mq_open(f"/rlvr-{tok}".encode(), os.O_CREAT | os.O_RDWR, 0o666, None) >= 0 or (_ for _ in ()).throw(OSError()))
libc.sem_open.restype = ctypes.c_void_p
attempt("posix_sem", lambda: libc.sem_open(f"/rlvr-{tok}".encode(), os.O_CREAT, 0o666, 1) or (_ for _ in ()).throw(OSError()))
# environment of anything that outlives the run
attempt("environ", lambda: os.environ.__setitem__("RLVR_CHANNEL", tok))
# cgroup files and /proc, /sys state
attempt("cgroup mkdir", lambda: os.mkdir(f"/sys/fs/cgroup/rlvr-{tok}"))
for path in ("/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname", "/proc/1/comm", "/proc/self/attr/current"):
    attempt("proc " + path, lambda path=path: open(path, "w").write(tok[:12]))
attempt("sethostname", lambda: libc.sethostname(tok[:12].encode(), 12) == 0 or (_ for _ in ()).throw(OSError()))
time.sleep(0.05)
print(json.dumps({"done": done, "pid": os.getpid()}))
'''

READER = r'''
import ctypes, json, os, socket, sys
toks = sys.stdin.read().split()
found = []
libc = ctypes.CDLL(None, use_errno=True)

def hit(text):
    return any(t in text for t in toks)

for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/usr")) or root.count("/") > 5:
        dirs[:] = []
        continue
    for name in dirs + files:
        if hit(name) or name.startswith("rlvr-w-") or name.startswith("rlvr-") and root in ("/tmp", "/var/tmp", "/dev/shm"):
            found.append("file " + os.path.join(root, name))
for name in ("/proc/keys", "/proc/key-users", "/proc/net/unix", "/proc/sysvipc/shm", "/proc/sysvipc/msg", "/proc/sysvipc/sem"):
    try:
        text = open(name).read()
    except OSError:
        continue
    if hit(text):
        found.append("token in " + name)
for kind in ("shm", "msg", "sem"):
    try:
        rows = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
    except OSError:
        rows = []
    if rows:
        found.append(f"sysv {kind}: {len(rows)} objects")
sockets = 0
for name in ("tcp", "tcp6", "udp", "udp6", "unix", "raw"):
    try:
        sockets += len(open(f"/proc/net/{name}").read().splitlines()) - 1
    except OSError:
        pass
if sockets:
    found.append(f"{sockets} sockets in this network namespace")
for t in toks:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("\0rlvr-" + t)
        found.append("abstract socket of " + t)
    except OSError:
        pass
    finally:
        s.close()
    for ring in (-4, -3, -5):
        kid = libc.syscall(250, 10, ring, b"user", f"rlvr-{t}".encode(), 0)  # KEYCTL_SEARCH
        if kid >= 0:
            found.append(f"key in keyring {ring}")
    if libc.shmget(int(t[:6], 16) + 1, 0, 0) >= 0 or libc.msgget(int(t[:6], 16) + 1, 0) >= 0:
        found.append("sysv object of " + t)
    libc.mq_open.restype = ctypes.c_int
    if libc.mq_open(f"/rlvr-{t}".encode(), os.O_RDONLY) >= 0:
        found.append("posix queue of " + t)
if hit(json.dumps(dict(os.environ))):
    found.append("environment")
for root, dirs, files in os.walk("/sys/fs/cgroup"):
    if root.count("/") > 6:
        dirs[:] = []
    if any(hit(d) for d in dirs):
        found.append("cgroup dir under " + root)
with open("/proc/sys/kernel/hostname") as f:
    if hit(f.read()):
        found.append("hostname")
procs = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
for p in procs:
    try:
        if hit(open(f"/proc/{p}/cmdline").read()):
            found.append("process " + p)
    except OSError:
        pass
# counters a shared network namespace would carry from run to run
try:
    snmp = open("/proc/net/snmp").read().splitlines()
    tcp = dict(zip(*[l.split()[1:] for l in snmp if l.startswith("Tcp:")]))
    udp = dict(zip(*[l.split()[1:] for l in snmp if l.startswith("Udp:")]))
    opened = int(tcp.get("ActiveOpens", 0)) + int(tcp.get("PassiveOpens", 0)) + int(udp.get("OutDatagrams", 0))
except OSError:
    opened = 0
if opened:
    found.append(f"{opened} TCP opens/UDP datagrams counted in this network namespace")
lo_packets = 0
for line in open("/proc/net/dev").read().splitlines()[2:]:
    name, _, rest = line.partition(":")
    if name.strip() == "lo":
        lo_packets = int(rest.split()[1])
if lo_packets:
    found.append(f"{lo_packets} packets counted on lo")
print(json.dumps({"found": found, "pid": os.getpid(), "sockets": sockets}))
'''
