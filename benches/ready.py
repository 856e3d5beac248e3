#!/usr/bin/env python3
"""Time from exec to READY=1: starts a daemon RUNS times with a NOTIFY_SOCKET of our own and
prints the median milliseconds from just before the spawn to the READY=1 datagram.

    benches/ready.py RUNS COMMAND [ARGS...]

The daemon is stopped with SIGTERM after each start. Used by benches/compare for both daemons,
so the spawn's own cost (fork, exec, dynamic linking) is in both figures alike.
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

runs, command = int(sys.argv[1]), sys.argv[2:]
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    times = []
    for _ in range(runs):
        start = time.monotonic()
        child = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                datagram = sock.recv(4096).decode(errors="replace")
                if "READY=1" in datagram.splitlines():
                    times.append((time.monotonic() - start) * 1000)
                    break
        except socket.timeout:
            sys.exit(f"{command[0]}: no READY=1 within 10 s")
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait()
    print(f"{statistics.median(times):.1f}")
