#!/usr/bin/env python3
"""journald's own ingestion ceiling: one native-protocol writer, 256-byte messages, blocking
sends for SECONDS; prints the number of entries sent. The caller counts what journald stored."""
import socket, sys, time

seconds = float(sys.argv[1])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024 * 1024)
sock.connect("/run/systemd/journal/socket")
payload = b"x" * 200
sent = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for _ in range(256):
        sock.send(b"SYSLOG_IDENTIFIER=ceiling\nPRIORITY=6\nMESSAGE=%08d %s\n" % (sent, payload))
        sent += 1
print(sent)
