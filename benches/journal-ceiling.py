#!/usr/bin/env python3
"""journald's own ingestion ceiling: one native-protocol writer, 256-byte messages, blocking
sends for SECONDS; prints the number of entries sent. The caller counts what journald stored.

`minimal` sends three fields (identifier, priority, message); `logger` sends the same fields
logger writes for a UDP message, so the two ceilings bracket what field count costs journald."""
import socket, sys, time

seconds = float(sys.argv[1])
shape = sys.argv[2] if len(sys.argv) > 2 else "minimal"
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024 * 1024)
sock.connect("/run/systemd/journal/socket")
payload = b"x" * 200
sent = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for _ in range(256):
        entry = b"SYSLOG_IDENTIFIER=ceiling\nPRIORITY=6\nMESSAGE=%08d %s\n" % (sent, payload)
        if shape == "logger":
            entry += (b"SYSLOG_FACILITY=1\nSYSLOG_PID=1234\nSYSLOG_TIMESTAMP=2026-11-23T21:%02d:00\n"
                      b"LOGGER_HOSTNAME=localhost\nLOGGER_TRANSPORT=udp\n"
                      b"LOGGER_PEER=127.0.0.1:40000\n" % (sent // 50000 % 60))
        sock.send(entry)
        sent += 1
print(sent)
