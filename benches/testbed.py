"""What the benches (all Python) and link/profile-idle share: a volatile journald of their own in a
private mount namespace, the peers and the load generator (rsyslog, syslog-ng's loggen), a test
PKI, starting a daemon and waiting for its READY=1 on a NOTIFY_SOCKET of our own, and reading a
process's CPU time and memory. Import it with `sys.path.insert(0, ROOT/benches)`."""
import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Builds, the unpacked loggen, the bench PKI and each bench's files, kept between runs.
BENCH = os.path.join(ROOT, "target", "bench")
LOGGER = os.environ.get("LOGGER") or os.path.join(ROOT, "target", "release", "logger")
SNG = os.path.join(BENCH, "loggen", "usr")
PKI = os.path.join(BENCH, "pki")
HZ = os.sysconf("SC_CLK_TCK")
RSYSLOG_MODULES = "/usr/lib/x86_64-linux-gnu/rsyslog"


def sh(*cmd, **kw):
    """Runs a command; its failure ends the bench."""
    return subprocess.run(cmd, check=True, **kw)


def enter_namespace(marker, net=False):
    """Runs this script again in a private mount namespace (once; with NET, a network namespace
    of its own too): /run is then ours to mount."""
    if os.environ.get(marker) != "1":
        extra = ["--net"] if net else []
        os.execvpe("unshare", ["unshare", "--mount", *extra, "--propagation", "private", *sys.argv],
                   dict(os.environ, **{marker: "1"}))


class Journald:
    """A volatile systemd-journald on a tmpfs /run (mounted once); `restart` starts it afresh
    with an empty journal. Use inside the namespace."""

    def __init__(self, config="[Journal]\nStorage=volatile\n"):
        sh("mount", "-t", "tmpfs", "tmpfs", "/run")
        os.makedirs("/run/systemd/journald.conf.d")
        with open("/run/systemd/journald.conf.d/bench.conf", "w") as f:
            f.write(config)
        self.process = None
        self.restart()

    def restart(self):
        self.stop()
        sh("rm", "-rf", "/run/log/journal", "/run/systemd/journal")
        self.process = subprocess.Popen(["/lib/systemd/systemd-journald"],
                                        stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists("/run/systemd/journal/socket"), 10, "journald's socket")

    def stop(self):
        if self.process:
            stop(self.process)
            self.process = None


def journald():
    """A volatile systemd-journald on a tmpfs /run; returns its process. Call in the namespace."""
    return Journald().process


def pki(directory):
    """ca.pem, and server/client .pem and .key signed by it for localhost and 127.0.0.1 (P-256,
    two days), as the TLS tests make them."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    for who in ("server", "client"):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", "/CN=localhost")
        with open(os.path.join(directory, f"{who}.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{who}.pem", "-days", "2", "-extfile", f"{who}.ext")


def peers(relp=False):
    """rsyslog (with its TLS module, and RELP's if asked), loggen's libraries (installed if
    missing), loggen itself (unpacked into target/bench/loggen: syslog-ng conflicts with
    rsyslog, so it is never installed), the bench PKI (target/bench/pki, ten years, reused) and
    this tree's release build."""
    os.makedirs(BENCH, exist_ok=True)
    wanted = [("rsyslog", "/usr/sbin/rsyslogd"),
              ("rsyslog-gnutls", f"{RSYSLOG_MODULES}/lmnsd_gtls.so"),
              ("libivykis0", "/usr/lib/x86_64-linux-gnu/libivykis.so.0"),
              ("libnet1", "/usr/lib/x86_64-linux-gnu/libnet.so.1"),
              ("libpcre3", "/usr/lib/x86_64-linux-gnu/libpcre.so.3"),
              ("libwrap0", "/usr/lib/x86_64-linux-gnu/libwrap.so.0")]
    if relp:
        wanted.append(("rsyslog-relp", f"{RSYSLOG_MODULES}/omrelp.so"))
    missing = [p for p, f in wanted if not os.path.exists(f)]
    if missing:
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
    if not os.path.exists(os.path.join(SNG, "bin", "loggen")):
        sh("sh", "-c", "apt-get download -qq syslog-ng-core && dpkg -x syslog-ng-core_*.deb loggen",
           cwd=BENCH)
    if not os.path.exists(os.path.join(PKI, "server.key")):
        os.makedirs(PKI, exist_ok=True)
        for cmd in [
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
            "-out ca.pem -days 3650 -subj /CN=bench-CA",
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key "
            "-out server.csr -subj /CN=localhost",
            "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext",
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out server.pem -days 3650 -extfile server.ext",
        ]:
            sh("sh", "-c", cmd + " 2>/dev/null", cwd=PKI)
    build()


def build(*extra):
    """This tree's release build (and `--example` targets, say)."""
    sh("cargo", "build", "--release", "--quiet", *extra, cwd=ROOT)


def baseline(rev, name="baseline"):
    """The logger binary of REV (a path to a binary is taken as it is), built from its own tree
    with its own target directory (target/bench/NAME-target, kept between runs). The tree is
    unpacked outside this repository, where Cargo cannot mistake it for a member of this
    workspace."""
    if os.path.isfile(rev):
        return os.path.abspath(rev)
    src = os.path.join("/var/tmp", f"logger-bench-{name}-src")
    sh("rm", "-rf", src)
    os.makedirs(src)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
    target = os.path.join(BENCH, f"{name}-target")
    sh("cargo", "build", "--release", "--quiet", "--manifest-path",
       os.path.join(src, "Cargo.toml"), env=dict(os.environ, CARGO_TARGET_DIR=target))
    return os.path.join(target, "release", "logger")


def loggen(*args, prefix=()):
    """Runs syslog-ng's loggen with ARGS (after PREFIX, `taskset -c 0` say); returns how many
    messages it says it sent."""
    env = dict(os.environ, LD_LIBRARY_PATH=f"{SNG}/lib/syslog-ng", SYSLOGNG_PREFIX=SNG)
    out = subprocess.run([*prefix, f"{SNG}/bin/loggen", *map(str, args)], env=env,
                         capture_output=True, text=True).stderr
    sent = re.findall(r"sent_messages=(\d+)|count=(\d+)", out)
    return int(next(filter(None, sent[-1]))) if sent else 0


class Notify:
    """A NOTIFY_SOCKET of our own at PATH: the real sd_notify protocol."""

    def __init__(self, path, timeout):
        if os.path.exists(path):
            os.unlink(path)
        self.path, self.timeout = path, timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def wait_for(self, word, what, alive=lambda: True):
        """Returns once a datagram has the line WORD (READY=1, say); exits after the timeout, or
        as soon as ALIVE() says the sender is gone."""
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(min(left, 0.2))
            try:
                datagram = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                if not alive():
                    sys.exit(f"{what} ended before {word}")
                continue
            if word in datagram.splitlines():
                return
        sys.exit(f"no {word} from {what} within {self.timeout} s")

    def drain(self):
        """Forgets what was sent before (a previous daemon's STATUS=, STOPPING=1)."""
        self.sock.settimeout(0)
        try:
            while True:
                self.sock.recv(4096)
        except (BlockingIOError, socket.timeout):
            pass

    def close(self):
        self.sock.close()


_notify = None


def start_ready(cmd, what, timeout=10, **popen):
    """Starts CMD with a NOTIFY_SOCKET of ours and returns its process once it said READY=1
    (logger does once every input is bound and every output open; rsyslog once its inputs
    run)."""
    global _notify
    if _notify is None:
        os.makedirs(BENCH, exist_ok=True)
        _notify = Notify(os.path.join(BENCH, f"notify.{os.getpid()}"), timeout)
        atexit.register(lambda: os.path.exists(_notify.path) and os.unlink(_notify.path))
    _notify.drain()
    popen.setdefault("stdin", subprocess.DEVNULL)
    popen.setdefault("stdout", subprocess.DEVNULL)
    proc = subprocess.Popen(cmd, env=dict(popen.pop("env", os.environ),
                                          NOTIFY_SOCKET=_notify.path), **popen)
    _notify.wait_for("READY=1", what, alive=lambda: proc.poll() is None)
    return proc


def stop(proc, sig=signal.SIGTERM, timeout=20):
    """Signals PROC (SIGTERM) and reaps it; SIGKILL after TIMEOUT seconds."""
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(condition, limit, what):
    """Polls CONDITION every 10 ms; exits naming WHAT after LIMIT seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"{what}: not within {limit} s")
        time.sleep(0.01)


def wait_port(port, up=True, limit=10.0):
    """Until a TCP connection to 127.0.0.1:PORT succeeds (or, with UP false, fails)."""
    def reached():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return up
        except OSError:
            return not up
    wait_until(reached, limit, f"port {port} {'open' if up else 'closed'}")


def udp_bound(port):
    """True once a UDP socket is bound to PORT (any address)."""
    with open("/proc/net/udp") as f:
        return any(line.split()[1].endswith(f":{port:04X}") for line in list(f)[1:])


def lines(path):
    """Lines in the file at PATH (0 without it)."""
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def settle(count, still=1.0, limit=120.0):
    """Waits until count() has not grown for STILL seconds (bounded by LIMIT); returns it."""
    prev, since, deadline = -1, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        now = count()
        if now != prev:
            prev, since = now, time.monotonic()
        elif time.monotonic() - since >= still:
            break
        time.sleep(0.1)
    return prev


def cpu_ticks(pid):
    """User and system time of PID, in clock ticks (HZ a second)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_kb(pid, key):
    """A kB figure of /proc/PID/status: VmRSS, VmHWM, RssAnon."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+)", f.read(), re.M).group(1))


def fds(pid):
    """Descriptors PID holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))
