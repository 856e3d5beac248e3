#!/usr/bin/env python3
"""journald's own ingestion ceiling: one native-protocol writer, 256-byte messages, for SECONDS;
prints the number of entries sent. The caller counts what journald stored.

The writer keeps journald's queue full without being woken for every free slot: a blocking
send would be (the kernel wakes a blocked datagram sender as soon as one entry is read), and
on two cores that ping-pong costs journald a fifth of its rate. Instead a full queue gets a
1 ms pause, as logger's journal output does.

`minimal` sends three fields (identifier, priority, message); `logger` sends the same fields
logger writes for a UDP message, so the two ceilings bracket what field count costs journald."""
import socket, sys, time

seconds = float(sys.argv[1])
shape = sys.argv[2] if len(sys.argv) > 2 else "minimal"
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024 * 1024)
sock.connect("/run/systemd/journal/socket")
sock.setblocking(False)
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
        while True:
            try:
                sock.send(entry)
                break
            except BlockingIOError:
                time.sleep(0.001)
        sent += 1
print(sent)
