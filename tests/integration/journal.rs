//! The journal input against a real journald: a standalone systemd-journald in a private mount
//! namespace (a tmpfs on /run, a volatile journal), fed numbered entries with a custom field
//! over the native protocol and through systemd-cat, read by logger across a SIGKILL, a clean
//! stop, a rotation, a journald restart and a vacuum of entries it had not read; and into a
//! disk-queued RELP output that keeps the read position with its records.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    the_journal_is_read_once_across_kills_stops_rotations_and_vacuums,
    a_disk_queued_forward_output_keeps_the_position_so_a_kill_reads_nothing_twice,
];

/// A mount namespace with a private /run and a journald of its own.
struct Namespace {
    holder: Child,
    journald: Option<Child>,
}

impl Namespace {
    fn new() -> Namespace {
        let holder = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journald.conf.d && \
                 printf '[Journal]\\nStorage=volatile\\nRateLimitIntervalSec=0\\n' \
                 > /run/systemd/journald.conf.d/test.conf && touch /run/ready && exec sleep 3600",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut ns = Namespace {
            holder,
            journald: None,
        };
        eventually("the namespace's /run", WAIT, || {
            ns.run(&["test", "-e", "/run/ready"]).status.success()
        });
        ns.start_journald();
        ns
    }

    fn pid(&self) -> String {
        self.holder.id().to_string()
    }

    /// `nsenter` into the namespace, then `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["--mount", "--target", &self.pid(), "--"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, WAIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start_journald(&mut self) {
        let child = self
            .command(&["/lib/systemd/systemd-journald"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.journald = Some(child);
        eventually("journald's socket", WAIT, || {
            self.run(&["test", "-S", "/run/systemd/journal/socket"])
                .status
                .success()
        });
    }

    fn restart_journald(&mut self) {
        if let Some(mut j) = self.journald.take() {
            let _ = j.kill();
            let _ = j.wait();
        }
        self.ok(&["rm", "-f", "/run/systemd/journal/socket"]);
        self.start_journald();
    }

    /// Numbered entries `from..to` with MY_FIELD over the native protocol.
    fn native(&self, marker: &str, from: usize, to: usize) {
        let script = format!(
            "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             for i in range({from}, {to}):\n    \
             s.sendto(('MESSAGE={marker} n%d\\nMY_FIELD={marker}-%d\\nSYSLOG_IDENTIFIER=jtest\\n' \
             % (i, i)).encode(), '/run/systemd/journal/socket')\n"
        );
        self.ok(&["python3", "-c", &script]);
    }

    /// Numbered lines `from..to` through systemd-cat (the stream protocol a unit's stdout uses).
    fn cat(&self, marker: &str, from: usize, to: usize) {
        let script = format!(
            "for i in $(seq {from} {}); do echo \"{marker} n$i\"; done | systemd-cat -t jcat",
            to - 1
        );
        self.ok(&["sh", "-c", &script]);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut j) = self.journald.take() {
            let _ = j.kill();
            let _ = j.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// How often each numbered entry of `marker` is in the file.
fn counts(path: &Path, marker: &str) -> BTreeMap<usize, usize> {
    numbered(path, &format!("\"message\":\"{marker} n"))
}

fn wait_for_all(path: &Path, marker: &str, n: usize) -> BTreeMap<usize, usize> {
    wait_for_numbered(path, &format!("\"message\":\"{marker} n"), n)
}

fn seqnum(cursor: &str) -> u64 {
    let i = cursor
        .split(';')
        .find_map(|p| p.strip_prefix("i="))
        .unwrap();
    u64::from_str_radix(i, 16).unwrap()
}

fn the_journal_is_read_once_across_kills_stops_rotations_and_vacuums() {
    require!(is_root(), "root (a mount namespace for journald)");
    require!(
        have("unshare") && have("nsenter") && have("systemd-cat") && have("python3"),
        "unshare, nsenter, systemd-cat and python3"
    );
    require!(
        Path::new("/lib/systemd/systemd-journald").exists(),
        "systemd-journald"
    );
    let mut ns = Namespace::new();
    let work = tempdir();
    let (state, log) = (work.path().join("state"), work.path().join("journal.json"));
    let marker = format!("j{}", std::process::id());
    let config = format!(
        "state-dir = \"{}\"\nstop-timeout = \"5s\"\nrate-limit = 10\nrate-limit-burst = 10\n\
         [[input]]\nread = \"journal\"\n\
         journal-match = [\"SYSLOG_IDENTIFIER=jtest\", \"+\", \"SYSLOG_IDENTIFIER=jcat\"]\n\
         [[output]]\nto = \"file:{}\"\nformat = \"json\"\n",
        state.display(),
        log.display()
    );
    let pid = ns.pid();
    let start = || {
        Builder::new()
            .config(&config)
            .wrapped_in(&["nsenter", "--mount", "--target", &pid, "--"])
            .start()
    };

    // Running: native entries with a custom field, and a stream's lines.
    ns.native(&marker, 0, 200);
    let d = start();
    let seen = wait_for_all(&log, &marker, 200);
    assert!(seen.values().all(|&c| c == 1), "duplicates while running");
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("\"message\":\"{marker} n7\"")))
        .unwrap();
    for part in [
        format!("\"MY_FIELD\":\"{marker}-7\""),
        "\"appname\":\"jtest\"".into(),
        "\"_TRANSPORT\":\"journal\"".into(),
        "\"transport\":\"journal\"".into(),
    ] {
        assert!(line.contains(&part), "{part} not in {line}");
    }
    ns.cat(&marker, 200, 300);
    wait_for_all(&log, &marker, 300);
    // A field of 150 KB costs at most max-message-size (64 KiB) here.
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)\n\
         s.sendto(b'MESSAGE={marker} big\\nSYSLOG_IDENTIFIER=jtest\\nBIG=' + b'x' * 150000 + \
         b'\\n', '/run/systemd/journal/socket')\n"
    );
    ns.ok(&["python3", "-c", &script]);
    let mut big = String::new();
    eventually("the entry with a 150 KB field", WAIT, || {
        big = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(&format!("\"message\":\"{marker} big\"")))
            .unwrap_or_default()
            .to_owned();
        !big.is_empty()
    });
    let cut = big
        .split("\"BIG\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        !cut.is_empty() && cut.len() <= 64 * 1024,
        "a 150 KB field read as {} bytes",
        cut.len()
    );
    assert!(
        big.contains("\"truncated\":true"),
        "not marked cut: {}",
        &big[..200]
    );

    // SIGKILL mid-stream, then a restart: nothing missing.
    let mut d = d;
    ns.native(&marker, 300, 1300);
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = d.wait_exit(WAIT);
    let d = start();
    let seen = wait_for_all(&log, &marker, 1300);
    let duplicated: usize = seen.values().map(|c| c - 1).sum();
    eprintln!("journal: SIGKILL mid-stream: 0 missing of 1300, {duplicated} duplicated");
    assert!(
        duplicated <= 2048,
        "{duplicated} duplicated after one SIGKILL"
    );

    // A clean stop, entries written while stopped, a rotation and a journald restart: all read,
    // not one twice.
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let before = counts(&log, &marker);
    ns.native(&marker, 1300, 1400);
    let d = start();
    ns.ok(&["journalctl", "--rotate"]);
    ns.native(&marker, 1400, 1500);
    ns.restart_journald();
    ns.cat(&marker, 1500, 1600);
    let seen = wait_for_all(&log, &marker, 1600);
    for i in 0..1600 {
        let was = before.get(&i).copied().unwrap_or(0);
        let expected = if i < 1300 { was } else { 1 };
        assert_eq!(seen[&i], expected, "n{i}: read again or lost");
    }

    // Entries it had not read are vacuumed while it is stopped: the gap is said, exactly.
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let saved = std::fs::read_to_string(state.join("journal.cursor")).unwrap();
    ns.native(&marker, 1600, 1700);
    ns.ok(&["journalctl", "--rotate"]);
    ns.ok(&["journalctl", "--vacuum-files=1"]);
    ns.native(&marker, 1700, 1710);
    // The first entry the input's matches take after the vacuum; what lies between is the
    // journal's own count (its sequence numbers), matching or not.
    let first = ns.ok(&[
        "journalctl",
        "-o",
        "export",
        "--no-pager",
        "SYSLOG_IDENTIFIER=jtest",
        "+",
        "SYSLOG_IDENTIFIER=jcat",
    ]);
    let first_cursor = first
        .lines()
        .find_map(|l| l.strip_prefix("__CURSOR="))
        .expect("an entry after the vacuum");
    let missed = seqnum(first_cursor) - seqnum(saved.trim()) - 1;
    let d = start();
    eventually("the entries after the vacuum", WAIT, || {
        counts(&log, &marker).contains_key(&1709)
    });
    let json = d.status_json();
    assert_eq!(
        json_number(&json, "\"listen\":\"journal:", "missed"),
        Some(missed),
        "{json}"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("missed {missed} journal entries")),
        "{stderr}"
    );
    eprintln!("journal: vacuum of unread entries: missed {missed}, said and counted exactly");

    // No loop: what logger relays into the journal is never read back by its journal input.
    let relay_log = work.path().join("relay.json");
    let relay = format!(
        "state-dir = \"{}\"\nlisten = [\"udp://127.0.0.1:0\"]\n[[input]]\nread = \"journal\"\n\
         [[output]]\nto = \"journal\"\ntransport = [\"udp\"]\n\
         [[output]]\nto = \"file:{}\"\nformat = \"json\"\ntransport = [\"journal\"]\n",
        work.path().join("relay-state").display(),
        relay_log.display()
    );
    let d = Builder::new()
        .config(&relay)
        .wrapped_in(&["nsenter", "--mount", "--target", &pid, "--"])
        .start();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        format!("<13>relayed: {marker} via udp").as_bytes(),
        d.addr("udp"),
    )
    .unwrap();
    eventually("the relayed message in the journal", WAIT, || {
        ns.ok(&[
            "journalctl",
            "-o",
            "cat",
            "--no-pager",
            "LOGGER_TRANSPORT=udp",
        ])
        .contains(&format!("{marker} via udp"))
    });
    ns.native(&format!("{marker}-after"), 0, 1);
    eventually("an entry written after the relay", WAIT, || {
        std::fs::read_to_string(&relay_log)
            .unwrap_or_default()
            .contains(&format!("{marker}-after n0"))
    });
    let read = std::fs::read_to_string(&relay_log).unwrap();
    assert!(
        !read.contains(&format!("{marker} via udp")),
        "the journal input read back what logger relayed: {read}"
    );
    // Another user cannot hide an entry from the input by wearing logger's marks.
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.sendto(b'MESSAGE={marker} evasion\\nLOGGER_TRANSPORT=udp\\nLOGGER_OWN_LOG=1\\n', \
         '/run/systemd/journal/socket')\n"
    );
    ns.ok(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
        &script,
    ]);
    eventually(
        "another user's entry with logger's marks, read",
        WAIT,
        || {
            std::fs::read_to_string(&relay_log)
                .unwrap_or_default()
                .contains(&format!("{marker} evasion"))
        },
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");

    // Across machines: a host's journal input forwards to a collector that writes into its own
    // journal, where the origin's fields are found (trusted ones as ORIGIN_*).
    let in_ns = |config: &str| {
        Builder::new()
            .config(config)
            .wrapped_in(&["nsenter", "--mount", "--target", &pid, "--"])
            .start()
    };
    let collector = in_ns("listen = [\"tcp://127.0.0.1:0\"]\n[[output]]\nto = \"journal\"\n");
    let host = in_ns(&format!(
        "state-dir = \"{}\"\n[[input]]\nread = \"journal\"\n\
         journal-match = [\"SYSLOG_IDENTIFIER=jfwd\"]\n[[output]]\nto = \"tcp://{}\"\n",
        work.path().join("host-state").display(),
        collector.addr("tcp")
    ));
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.sendto(b'MESSAGE=across machines\\nSYSLOG_IDENTIFIER=jfwd\\nMY_FIELD={marker}-fwd\\n', \
         '/run/systemd/journal/socket')\n"
    );
    ns.ok(&["python3", "-c", &script]);
    let mut export = String::new();
    eventually(
        "the forwarded entry in the collector's journal",
        WAIT,
        || {
            export = ns.ok(&[
                "journalctl",
                "-o",
                "export",
                "--no-pager",
                &format!("MY_FIELD={marker}-fwd"),
                "LOGGER_TRANSPORT=tcp",
            ]);
            !export.is_empty()
        },
    );
    for field in [
        "MESSAGE=across machines",
        "SYSLOG_IDENTIFIER=jfwd",
        "ORIGIN_TRANSPORT=journal",
        "ORIGIN_PID=",
    ] {
        assert!(export.contains(field), "{field} not in {export}");
    }
    assert_eq!(
        export.matches("\n__CURSOR=").count() + usize::from(export.starts_with("__CURSOR=")),
        1,
        "read back and forwarded again: {export}"
    );
    for d in [host, collector] {
        let (status, _, stderr) = d.stop();
        assert!(status.success(), "{stderr}");
    }
    drop(ns);
}

/// The worst case for the input's own position file: it can never be written (a read-only
/// state-dir), as if every SIGKILL came between the queue's write and the input's save. A
/// forward output's disk queue holds the position with the records it took, so a restart
/// reads nothing twice: with the collector up (the queue delivered and emptied) and down (the
/// entries on disk only).
fn a_disk_queued_forward_output_keeps_the_position_so_a_kill_reads_nothing_twice() {
    require!(is_root(), "root (a mount namespace for journald)");
    require!(
        have("unshare") && have("nsenter") && have("python3"),
        "unshare, nsenter and python3"
    );
    require!(
        Path::new("/lib/systemd/systemd-journald").exists(),
        "systemd-journald"
    );
    let ns = Namespace::new();
    ns.ok(&[
        "sh",
        "-c",
        "mkdir -p /run/ro-state && mount -t tmpfs -o ro tmpfs /run/ro-state",
    ]);
    let work = tempdir();
    let out = work.path().join("collected.json");
    let port = free_port();
    let marker = format!("q{}", std::process::id());
    let config = format!(
        "heartbeat = \"0\"\nstate-dir = \"/run/ro-state\"\n[[input]]\nread = \"journal\"\n\
         journal-match = [\"SYSLOG_IDENTIFIER=jtest\"]\n\
         [[output]]\nto = \"relp://127.0.0.1:{port}\"\nqueue-dir = \"{}\"\n",
        work.path().join("queue").display()
    );
    let pid = ns.pid();
    let start = || {
        Builder::new()
            .config(&config)
            .wrapped_in(&["nsenter", "--mount", "--target", &pid, "--"])
            .start()
    };
    disk_queued_reader_is_killed_twice(
        port,
        &out,
        &format!("\"message\":\"{marker} n"),
        &start,
        &|from, to| ns.native(&marker, from, to),
    );
    eprintln!(
        "journal into a disk queue, its position never saved by the input: 0 of 700 read twice \
         across two SIGKILLs"
    );
}
