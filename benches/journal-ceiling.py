#!/usr/bin/env python3
"""journald's own ingestion ceiling: one native-protocol writer, 256-byte messages, for SECONDS;
prints the number of entries sent. The caller counts what journald stored.

The writer keeps journald's queue full without being woken for every free slot: a blocking
send would be (the kernel wakes a blocked datagram sender as soon as one entry is read), and
on two cores that ping-pong costs journald a fifth of its rate. Instead a full queue gets a
1 ms pause, as logger's journal output does.

`minimal` sends three fields (identifier, priority, message). `udp` and `unix` send exactly the
fields logger writes for an RFC 3164 message with a hostname over UDP or TCP (10) and over the
local socket (12: the sender's credentials instead of its address), so each journal case can be
read against the ceiling for its own entries."""
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
        if shape != "minimal":
            entry += (b"SYSLOG_FACILITY=1\nSYSLOG_PID=1234\nSYSLOG_TIMESTAMP=Nov 23 21:%02d:00\n"
                      b"LOGGER_HOSTNAME=localhost\nLOGGER_FORMAT=rfc3164\n" % (sent // 50000 % 60))
        if shape == "udp":
            entry += b"LOGGER_TRANSPORT=udp\nLOGGER_PEER=127.0.0.1:40000\n"
        elif shape == "unix":
            entry += (b"LOGGER_TRANSPORT=unix\nLOGGER_PEER_PID=4321\nLOGGER_PEER_UID=0\n"
                      b"LOGGER_PEER_GID=0\n")
        while True:
            try:
                sock.send(entry)
                break
            except BlockingIOError:
                time.sleep(0.001)
        sent += 1
print(sent)
