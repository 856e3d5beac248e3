//! RFC 3164 as real senders write it. Each sample is named after the device or program that
//! produced it and where it was published; the expected fields are what rsyslog, syslog-ng and
//! syslog-loose agree on (where rsyslog's test suite states its reading, that is the reference).
//!
//! Sources: rsyslog's `tests/testsuites/*.parse1` (real-life samples its users submitted),
//! syslog-loose's tests (nginx, haproxy, rsyslog, syslog-ng and vector.dev captures), RFC 3164
//! section 5.4, and the device samples of our issue tracker (Cisco PIX/ASA, a switch's
//! CMDLOGGER, Apache's error log via syslog).

use super::{BASE, Case, check};

#[test]
fn rsyslog_test_suite_samples() {
    check(&[
        Case {
            name: "rsyslog 1.parse1: Cisco PIX through a relay that added its address",
            raw: b"<167>Mar  6 16:57:54 172.20.245.8 %PIX-7-710005: UDP request discarded from SERVER1/2741 to test_app:255.255.255.255/61601",
            pri: (20, 7),
            timestamp: Some("Mar  6 16:57:54"),
            host: Some("172.20.245.8"),
            app: Some("%PIX-7-710005"),
            text: b"UDP request discarded from SERVER1/2741 to test_app:255.255.255.255/61601",
            ..BASE
        },
        Case {
            name: "rsyslog 2.parse1: sshd(pam_unix) with a pid",
            raw: b"<38>Mar 27 19:06:53 source_server sshd(pam_unix)[12750]: session opened for user foo by (uid=0)",
            pri: (4, 6),
            timestamp: Some("Mar 27 19:06:53"),
            host: Some("source_server"),
            app: Some("sshd(pam_unix)"),
            pid: Some("12750"),
            text: b"session opened for user foo by (uid=0)",
            ..BASE
        },
        Case {
            name: "rsyslog 3.parse1: padded one-digit day",
            raw: b"<38>Apr  6 15:07:10 lxcvs07 sshd(pam_unix)[31738]: session closed for user cvsadmin",
            pri: (4, 6),
            timestamp: Some("Apr  6 15:07:10"),
            host: Some("lxcvs07"),
            app: Some("sshd(pam_unix)"),
            pid: Some("31738"),
            text: b"session closed for user cvsadmin",
            ..BASE
        },
        Case {
            name: "rsyslog 4.parse1: a dash in the hostname",
            raw: b"<29>Jul 31 21:39:21 example-b example-gw[10538]: disconnect host=/192.0.2.1 destination=192.0.2.2/11282 in=3274 out=1448 duration=0",
            pri: (3, 5),
            timestamp: Some("Jul 31 21:39:21"),
            host: Some("example-b"),
            app: Some("example-gw"),
            pid: Some("10538"),
            text: b"disconnect host=/192.0.2.1 destination=192.0.2.2/11282 in=3274 out=1448 duration=0",
            ..BASE
        },
        Case {
            name: "rsyslog reallife.parse1: a VPN gateway",
            raw: b"<29>Oct 16 20:47:24 example-p exam-pl[12345]: connect host= /192.0.2.1",
            pri: (3, 5),
            timestamp: Some("Oct 16 20:47:24"),
            host: Some("example-p"),
            app: Some("exam-pl"),
            pid: Some("12345"),
            text: b"connect host= /192.0.2.1",
            ..BASE
        },
        Case {
            name: "rsyslog reallife.parse1: Snare MSWinEventLog, no hostname",
            raw: b"<175>Oct 16 23:47:31 #001 MSWinEventLog 0#011Security#01119023582#011Fri Oct 16 16:30:44 2009",
            pri: (21, 7),
            timestamp: Some("Oct 16 23:47:31"),
            app: Some("#001"),
            text: b"MSWinEventLog 0#011Security#01119023582#011Fri Oct 16 16:30:44 2009",
            ..BASE
        },
        Case {
            name: "rsyslog date1.parse1: a space between PRI and the timestamp",
            raw: b"<38> Mar  7 19:06:53 example tag: testmessage (only date actually tested)",
            pri: (4, 6),
            timestamp: Some("Mar  7 19:06:53"),
            host: Some("example"),
            app: Some("tag"),
            text: b"testmessage (only date actually tested)",
            ..BASE
        },
        Case {
            name: "rsyslog date2.parse1: one-digit day without its padding space",
            raw: b"<38>Mar 7 19:06:53 example tag: testmessage (only date actually tested)",
            pri: (4, 6),
            timestamp: Some("Mar 7 19:06:53"),
            host: Some("example"),
            app: Some("tag"),
            text: b"testmessage (only date actually tested)",
            ..BASE
        },
        Case {
            name: "rsyslog date3.parse1: a year and a colon after the time",
            raw: b"<38>Mar 7 2008 19:06:53: example tag: testmessage (only date actually tested)",
            pri: (4, 6),
            timestamp: Some("Mar 7 2008 19:06:53"),
            host: Some("example"),
            app: Some("tag"),
            text: b"testmessage (only date actually tested)",
            ..BASE
        },
        Case {
            name: "rsyslog date4.parse1: a year before the time",
            raw: b"<38>Mar 7 2008 19:06:53 example tag: testmessage (only date actually tested)",
            pri: (4, 6),
            timestamp: Some("Mar 7 2008 19:06:53"),
            host: Some("example"),
            app: Some("tag"),
            text: b"testmessage (only date actually tested)",
            ..BASE
        },
        Case {
            name: "rsyslog date5.parse1: a colon after the time",
            raw: b"<38>Mar 7 19:06:53: example tag: testmessage (only date actually tested)",
            pri: (4, 6),
            timestamp: Some("Mar 7 19:06:53"),
            host: Some("example"),
            app: Some("tag"),
            text: b"testmessage (only date actually tested)",
            ..BASE
        },
        Case {
            name: "rsyslog rfc3164.parse1: RFC 3164 section 5.4, example 1",
            raw: b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            pri: (4, 2),
            timestamp: Some("Oct 11 22:14:15"),
            host: Some("mymachine"),
            app: Some("su"),
            text: b"'su root' failed for lonvick on /dev/pts/8",
            ..BASE
        },
        Case {
            name: "rsyslog weird.parse1: a long tag and no text",
            raw: b"<14>Aug 30 23:00:05 X4711 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            pri: (1, 6),
            timestamp: Some("Aug 30 23:00:05"),
            host: Some("X4711"),
            app: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ..BASE
        },
        Case {
            name: "rsyslog weird.parse1: a hostname and nothing else",
            raw: b"<14>Aug 30 23:00:05 X4711",
            pri: (1, 6),
            timestamp: Some("Aug 30 23:00:05"),
            host: Some("X4711"),
            ..BASE
        },
        Case {
            name: "rsyslog weird.parse1: nothing after the timestamp but a space",
            raw: b"<14>Aug 30 23:00:05 ",
            pri: (1, 6),
            timestamp: Some("Aug 30 23:00:05"),
            ..BASE
        },
        Case {
            name: "rsyslog weird.parse1: RFC 3339 time, a long tag, no text",
            raw: b"<14>2010-08-30T23:00:05Z X4711 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            pri: (1, 6),
            timestamp: Some("2010-08-30T23:00:05Z"),
            host: Some("X4711"),
            app: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ..BASE
        },
        Case {
            name: "rsyslog upcase-date.parse1: a month in capitals, a year after the time",
            raw: b"<6>AUG 10 22:18:24 2009  netips-warden2-p [audit] user=[*SMS] src=192.168.11.11 iface=5 access=9 Update State Reset",
            pri: (0, 6),
            timestamp: Some("AUG 10 22:18:24"),
            // rsyslog's reading: the year is the hostname, two spaces leave the tag empty.
            host: Some("2009"),
            text: b"netips-warden2-p [audit] user=[*SMS] src=192.168.11.11 iface=5 access=9 Update State Reset",
            ..BASE
        },
    ]);
}

#[test]
fn syslog_loose_and_vector_samples() {
    check(&[
        Case {
            name: "vector.dev: Apache error log via syslog, one-digit day, a tag without colon",
            raw: b"<131>Jun 8 11:54:08 master apache_error [Tue Jun 08 11:54:08.929301 2021] [php7:emerg] [pid 1374899] [client 95.223.77.60:41888] rest of message",
            pri: (16, 3),
            timestamp: Some("Jun 8 11:54:08"),
            host: Some("master"),
            app: Some("apache_error"),
            text: b"[Tue Jun 08 11:54:08.929301 2021] [php7:emerg] [pid 1374899] [client 95.223.77.60:41888] rest of message",
            ..BASE
        },
        Case {
            name: "syslog-loose: nginx access log",
            raw: b"<190>Dec 28 16:49:07 plertrood-thinkpad-x220 nginx: 127.0.0.1 - - [28/Dec/2019:16:49:07 +0000] \"GET / HTTP/1.1\" 304 0 \"-\"",
            pri: (23, 6),
            timestamp: Some("Dec 28 16:49:07"),
            host: Some("plertrood-thinkpad-x220"),
            app: Some("nginx"),
            text: b"127.0.0.1 - - [28/Dec/2019:16:49:07 +0000] \"GET / HTTP/1.1\" 304 0 \"-\"",
            ..BASE
        },
        Case {
            name: "syslog-loose: haproxy writes no hostname",
            raw: b"<133>Jan 13 16:33:35 haproxy[73411]: Proxy sticky-servers started.",
            pri: (16, 5),
            timestamp: Some("Jan 13 16:33:35"),
            app: Some("haproxy"),
            pid: Some("73411"),
            text: b"Proxy sticky-servers started.",
            ..BASE
        },
        Case {
            name: "syslog-loose: rsyslog's start message (structured data in the text)",
            raw: b"<46>Jan  5 15:33:03 plertrood-ThinkPad-X220 rsyslogd:  [origin software=\"rsyslogd\" swVersion=\"8.32.0\"] start",
            pri: (5, 6),
            timestamp: Some("Jan  5 15:33:03"),
            host: Some("plertrood-ThinkPad-X220"),
            app: Some("rsyslogd"),
            text: b" [origin software=\"rsyslogd\" swVersion=\"8.32.0\"] start",
            ..BASE
        },
        Case {
            name: "syslog-loose: UTF-8 hostname and tag",
            raw: "<46>Jan 5 10:01:00 Übergröße außerplanmäßig größenordnungsmäßig".as_bytes(),
            pri: (5, 6),
            timestamp: Some("Jan 5 10:01:00"),
            host: Some("Übergröße"),
            app: Some("außerplanmäßig"),
            text: "größenordnungsmäßig".as_bytes(),
            ..BASE
        },
        Case {
            name: "syslog-loose: a lone colon where the tag would be",
            raw: b"<34>Oct 11 22:14:15 : a message",
            pri: (4, 2),
            timestamp: Some("Oct 11 22:14:15"),
            text: b"a message",
            ..BASE
        },
        Case {
            name: "syslog-loose: a month in capitals and a lone colon",
            raw: b"<34>OCT 11 22:14:15 : a message",
            pri: (4, 2),
            timestamp: Some("OCT 11 22:14:15"),
            text: b"a message",
            ..BASE
        },
        Case {
            name: "syslog-loose: a space before an RFC 3339 time, a host and a lone colon",
            raw: b"<54> 1970-01-01T00:01:31+00:00 host :",
            pri: (6, 6),
            timestamp: Some("1970-01-01T00:01:31+00:00"),
            host: Some("host"),
            ..BASE
        },
        Case {
            name: "syslog-loose: JSON after two spaces (no tag)",
            raw: b"<134>Oct 30 16:05:54 opsaudit  {\"username\": \"admin\", \"ip\": \"7.7.7.7\"}",
            pri: (16, 6),
            timestamp: Some("Oct 30 16:05:54"),
            host: Some("opsaudit"),
            text: b"{\"username\": \"admin\", \"ip\": \"7.7.7.7\"}",
            ..BASE
        },
        Case {
            name: "syslog-loose: syslog-ng's default network format",
            raw: b"<13>Feb 13 20:07:26 74794bfb6795 root[8539]: i am foobar",
            timestamp: Some("Feb 13 20:07:26"),
            host: Some("74794bfb6795"),
            app: Some("root"),
            pid: Some("8539"),
            text: b"i am foobar",
            ..BASE
        },
        Case {
            name: "syslog-loose: rsyslog omfwd's RSYSLOG_ForwardFormat",
            raw: b"<190>2019-02-13T21:53:30.605850+00:00 74794bfb6795 liblogging-stdlog:  [origin software=\"rsyslogd\"] start",
            pri: (23, 6),
            timestamp: Some("2019-02-13T21:53:30.605850+00:00"),
            host: Some("74794bfb6795"),
            app: Some("liblogging-stdlog"),
            text: b" [origin software=\"rsyslogd\"] start",
            ..BASE
        },
    ]);
}

#[test]
fn network_device_samples() {
    check(&[
        Case {
            name: "Cisco PIX/ASA: a year and a colon after the time, no hostname",
            raw: b"<166>Apr 15 2007 21:28:13: %PIX-6-302014: Teardown TCP connection 1391 for outside:192.0.2.7/80 to inside:10.1.1.5/1025 duration 0:00:01 bytes 6385 TCP FINs",
            pri: (20, 6),
            timestamp: Some("Apr 15 2007 21:28:13"),
            app: Some("%PIX-6-302014"),
            text: b"Teardown TCP connection 1391 for outside:192.0.2.7/80 to inside:10.1.1.5/1025 duration 0:00:01 bytes 6385 TCP FINs",
            ..BASE
        },
        Case {
            name: "Cisco ASA with a device id: hostname, then a lone colon",
            raw: b"<166>Jan 05 2015 12:00:00 fw-edge-1 : %ASA-6-302013: Built outbound TCP connection 8",
            pri: (20, 6),
            timestamp: Some("Jan 05 2015 12:00:00"),
            host: Some("fw-edge-1"),
            text: b"%ASA-6-302013: Built outbound TCP connection 8",
            ..BASE
        },
        Case {
            name: "switch CMDLOGGER: a month in capitals",
            raw: b"<190>NOV 22 00:00:33 switch1 CMDLOGGER[165319912]: cmd_logger_api.c:404: CLI show running-config",
            pri: (23, 6),
            timestamp: Some("NOV 22 00:00:33"),
            host: Some("switch1"),
            app: Some("CMDLOGGER"),
            pid: Some("165319912"),
            text: b"cmd_logger_api.c:404: CLI show running-config",
            ..BASE
        },
        Case {
            name: "an IPv6 literal as the hostname",
            raw: b"<14>Nov 22 00:00:33 0002:: snmpd[811]: Connection from UDP: [2001:db8::1]:161",
            pri: (1, 6),
            timestamp: Some("Nov 22 00:00:33"),
            host: Some("0002::"),
            app: Some("snmpd"),
            pid: Some("811"),
            text: b"Connection from UDP: [2001:db8::1]:161",
            ..BASE
        },
        Case {
            name: "an IPv6 literal and a tag without colon",
            raw: b"<14>Nov 22 00:00:33 2001:db8::42 kernel link up",
            pri: (1, 6),
            timestamp: Some("Nov 22 00:00:33"),
            host: Some("2001:db8::42"),
            app: Some("kernel"),
            text: b"link up",
            ..BASE
        },
        Case {
            name: "a tag followed directly by its text",
            raw: b"<38>Nov 22 00:00:33 gw1 sshd:Accepted publickey for ops",
            pri: (4, 6),
            timestamp: Some("Nov 22 00:00:33"),
            host: Some("gw1"),
            app: Some("sshd"),
            text: b"Accepted publickey for ops",
            ..BASE
        },
        Case {
            name: "a clock after the hostname is text, not a tag",
            raw: b"<14>Nov 22 00:00:33 nas1 02:00:00 backup started",
            pri: (1, 6),
            timestamp: Some("Nov 22 00:00:33"),
            host: Some("nas1"),
            text: b"02:00:00 backup started",
            ..BASE
        },
        Case {
            name: "an RFC 3339 time after the hostname is text, not a tag",
            raw: b"<14>Nov 22 00:00:33 nas1 2026-11-22T00:00:33Z backup started",
            pri: (1, 6),
            timestamp: Some("Nov 22 00:00:33"),
            host: Some("nas1"),
            text: b"2026-11-22T00:00:33Z backup started",
            ..BASE
        },
        Case {
            name: "key=value text after the hostname is not a tag",
            raw: b"<14>Nov 22 00:00:33 fw2 action=drop src=192.0.2.1",
            pri: (1, 6),
            timestamp: Some("Nov 22 00:00:33"),
            host: Some("fw2"),
            text: b"action=drop src=192.0.2.1",
            ..BASE
        },
        Case {
            name: "RFC 3164 section 5.4, example 2 (peers read the first word as the tag)",
            raw: b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
            timestamp: Some("Feb  5 17:32:18"),
            host: Some("10.0.0.99"),
            app: Some("Use"),
            text: b"the BFG!",
            ..BASE
        },
        Case {
            name: "a fraction of a second in a BSD timestamp",
            raw: b"<187>Mar  1 18:46:11.123 rtr-3 LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to down",
            pri: (23, 3),
            timestamp: Some("Mar  1 18:46:11.123"),
            host: Some("rtr-3"),
            app: Some("LINEPROTO-5-UPDOWN"),
            text: b"Line protocol on Interface Gi0/1, changed state to down",
            ..BASE
        },
    ]);
}

#[test]
fn local_samples_keep_the_hostless_form() {
    use crate::message::Transport::UnixDatagram;
    check(&[
        Case {
            name: "syslog(3) with a tag directly followed by its text",
            transport: UnixDatagram,
            raw: b"<14>Nov 22 00:00:33 myapp:started",
            pri: (1, 6),
            timestamp: Some("Nov 22 00:00:33"),
            app: Some("myapp"),
            text: b"started",
            ..BASE
        },
        Case {
            name: "syslog(3) text that starts with a clock",
            transport: UnixDatagram,
            raw: b"<14>Nov 22 00:00:33 02:00:00 nightly",
            pri: (1, 6),
            timestamp: Some("Nov 22 00:00:33"),
            text: b"02:00:00 nightly",
            ..BASE
        },
        Case {
            name: "syslog(3) with spaces after PRI and a month in capitals",
            transport: UnixDatagram,
            raw: b"<14>  DEC  1 00:00:33 cron[9]: job",
            pri: (1, 6),
            timestamp: Some("DEC  1 00:00:33"),
            app: Some("cron"),
            pid: Some("9"),
            text: b"job",
            ..BASE
        },
    ]);
}
