"""What the Python benches and link/profile-idle share: a volatile journald of their own in a
private mount namespace, a NOTIFY_SOCKET, and a test PKI. Import it with `sys.path.insert(0, ROOT/benches)`."""
import os
import socket
import subprocess
import sys
import time


def enter_namespace(marker):
    """Runs this script again in a private mount namespace (once): /run is then ours to mount."""
    if os.environ.get(marker) != "1":
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", *sys.argv],
                   dict(os.environ, **{marker: "1"}))


def journald():
    """A volatile systemd-journald on a tmpfs /run; returns its process. Call in the namespace."""
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    os.makedirs("/run/systemd/journald.conf.d")
    with open("/run/systemd/journald.conf.d/bench.conf", "w") as f:
        f.write("[Journal]\nStorage=volatile\n")
    journal = subprocess.Popen(["/lib/systemd/systemd-journald"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists("/run/systemd/journal/socket"):
        if time.monotonic() > deadline:
            sys.exit("journald did not start")
        time.sleep(0.01)
    return journal


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


class Notify:
    """A NOTIFY_SOCKET of our own at PATH: the real sd_notify protocol."""

    def __init__(self, path, timeout):
        if os.path.exists(path):
            os.unlink(path)
        self.path, self.timeout = path, timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def wait_for(self, word, what):
        """Returns once a datagram has the line WORD (READY=1, say); exits after the timeout."""
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                datagram = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                break
            if word in datagram.splitlines():
                return
        sys.exit(f"no {word} from logger within {self.timeout} s ({what})")

    def close(self):
        self.sock.close()
