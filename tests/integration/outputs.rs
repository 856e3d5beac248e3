//! Several outputs at once, chosen by syslog.conf rules: every message lands in exactly the
//! outputs whose rules take it, in the format each asks for, and one no rule takes is counted;
//! an output that is stuck, full or killed loses nothing its disk queue took.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    debian_rules_place_every_facility_and_severity_where_rsyslog_does,
    outputs_take_what_their_rules_say_in_their_formats_and_the_rest_is_unrouted,
    a_reload_keeps_adds_and_removes_outputs,
    a_stuck_output_that_drops_stalls_neither_the_others_nor_the_stop,
    a_stuck_output_that_blocks_holds_the_inputs_back_and_the_stop_ends_on_time,
    a_collector_writes_per_host_files_and_follows_no_planted_link,
    a_disk_queued_file_output_on_a_full_disk_loses_nothing_to_a_kill,
];

/// One message per facility and severity (192), each text naming both.
fn corpus() -> Vec<(String, Vec<u8>)> {
    (0..24u8)
        .flat_map(|f| (0..8u8).map(move |s| (f, s)))
        .map(|(f, s)| {
            let marker = format!("corpus-f{f}-s{s}");
            let raw = format!("<{}>Nov 22 00:00:33 app[1]: {marker}", f * 8 + s);
            (marker, raw.into_bytes())
        })
        .collect()
}

/// Which corpus markers each file holds.
fn placement(dir: &Path, files: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    files
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let markers = text
                .split_whitespace()
                .filter(|w| w.starts_with("corpus-"))
                .map(str::to_owned)
                .collect();
            (name.to_string(), markers)
        })
        .collect()
}

const DEBIAN_FILES: [&str; 6] = [
    "syslog", "auth.log", "cron.log", "kern.log", "mail.log", "user.log",
];

fn debian_rules_place_every_facility_and_severity_where_rsyslog_does() {
    require!(have("rsyslogd"), "rsyslog (rsyslogd), the reference");
    let work = tempdir();
    let (ours, theirs) = (work.path().join("logger"), work.path().join("rsyslog"));
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();

    // rsyslog with Debian's own rules, reading a socket of its own.
    let rules: String = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/debian-rules.toml"),
    )
    .unwrap()
    .lines()
    .filter_map(|l| l.strip_prefix("#   "))
    .filter(|l| l.contains("/var/log/"))
    .map(|l| {
        l.replace("-/var/log/", "/var/log/")
            .replace("/var/log/", &format!("{}/", theirs.display()))
    })
    .map(|l| l + "\n")
    .collect();
    assert_eq!(rules.lines().count(), 6, "{rules}");
    let rs_sock = work.path().join("rsyslog.sock");
    let mut rsyslog = Rsyslog::start(
        &format!(
            "module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{s}\" RateLimit.Interval=\"0\" UseSpecialParser=\"off\")\n\
             {rules}",
            s = rs_sock.display()
        ),
        &[],
    );
    eventually("rsyslog making its socket", WAIT, || rs_sock.exists());

    // logger with the shipped example, paths moved into the test directory.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/debian-rules.toml"),
    )
    .unwrap()
    .replace("/var/log/", &format!("{}/", ours.display()));
    let b = Builder::new().config(&example);
    let sock = b.dir().join("log");
    let d = b.arg(format!("--listen=unix://{}", sock.display())).start();

    let client = UnixDatagram::unbound().unwrap();
    for (_, raw) in corpus() {
        client.send_to(&raw, &sock).unwrap();
        client.send_to(&raw, &rs_sock).unwrap();
    }
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    // rsyslog reads its socket and writes asynchronously, and leaves what it has not read at a
    // stop: it is done once the last message sent (every file's rules take it or not, but
    // syslog takes facility 23) is in its syslog file.
    let last = theirs.join("syslog");
    wait_for_text(&last, "corpus-f23-s7");
    rsyslog.stop();

    let (ours, theirs) = (
        placement(&ours, &DEBIAN_FILES),
        placement(&theirs, &DEBIAN_FILES),
    );
    let total: usize = theirs.values().map(BTreeSet::len).sum();
    assert!(
        total >= 192,
        "rsyslog placed only {total} messages: {theirs:?}"
    );
    for file in DEBIAN_FILES {
        assert_eq!(ours[file], theirs[file], "{file}: logger vs rsyslog");
    }
}

fn outputs_take_what_their_rules_say_in_their_formats_and_the_rest_is_unrouted() {
    // Outside the daemon's directory, which goes with it at the stop.
    let work = tempdir();
    let dir = work.path().to_owned();
    let d = Builder::new()
        .config(&format!(
            "[[output]]\nto = \"file:{d}/auth.json\"\nmatch = \"auth,authpriv.*\"\nformat = \"json\"\n\
             [[output]]\nto = \"file:{d}/kern-net.log\"\nmatch = \"kern.warning\"\n\
             format = \"rfc5424\"\ntransport = [\"udp\"]\n\
             [[output]]\nto = \"file:{d}/all.log\"\nmatch = \"*.*;auth,authpriv.none;kern.none\"\n\
             program = [\"cron\", \"app\"]\n",
            d = dir.display()
        ))
        .arg("--listen=udp://127.0.0.1:0")
        .arg(format!("--listen=unix://{}/log", dir.display()))
        .start();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let unix = UnixDatagram::unbound().unwrap();
    let local = dir.join("log");
    udp.send_to(
        b"<38>Nov 22 00:00:33 gw1 sshd[5]: auth-over-udp",
        d.addr("udp"),
    )
    .unwrap();
    unix.send_to(b"<86>Nov 22 00:00:33 sudo: authpriv-local", &local)
        .unwrap();
    udp.send_to(b"<3>Nov 22 00:00:33 r1 kernel: kern-err-udp", d.addr("udp"))
        .unwrap();
    unix.send_to(
        b"<3>Nov 22 00:00:33 kernel: kern-err-local-unrouted",
        &local,
    )
    .unwrap();
    udp.send_to(
        b"<6>Nov 22 00:00:33 r1 kernel: kern-info-udp-unrouted",
        d.addr("udp"),
    )
    .unwrap();
    unix.send_to(b"<78>Nov 22 00:00:33 cron[9]: cron-local", &local)
        .unwrap();
    unix.send_to(b"<13>Nov 22 00:00:33 other: user-other-unrouted", &local)
        .unwrap();
    d.wait_for_status_count("\"totals\"", "unrouted", 3);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let (auth, kern, all) = (read("auth.json"), read("kern-net.log"), read("all.log"));
    assert_eq!(auth.lines().count(), 2, "{auth}");
    assert!(
        auth.lines().all(|l| l.starts_with("{\"@timestamp\":")),
        "{auth}"
    );
    assert!(
        auth.contains("\"message\":\"auth-over-udp\"")
            && auth.contains("\"source\":{\"ip\":\"127.0.0.1\"")
    );
    assert!(
        auth.contains("\"message\":\"authpriv-local\"") && auth.contains("\"transport\":\"unix\"")
    );
    assert_eq!(kern.lines().count(), 1, "{kern}");
    assert!(
        kern.starts_with("<3>1 ")
            && kern.contains("transport=\"udp\"")
            && kern.ends_with("] kern-err-udp\n"),
        "{kern}"
    );
    assert_eq!(all.lines().count(), 1, "{all}");
    assert!(all.contains(" cron[9] cron.info: cron-local"), "{all}");
    assert!(
        stderr.contains("unrouted 3"),
        "the stop summary counts what no output took: {stderr}"
    );
}

fn a_reload_keeps_adds_and_removes_outputs() {
    let work = tempdir();
    let dir = work.path().to_owned();
    let table = |file: &str, select: &str| {
        format!(
            "[[output]]\nto = \"file:{}/{file}\"\nmatch = \"{select}\"\n",
            dir.display()
        )
    };
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    // A datagram and a signal race: each message is known to be handled once it is in a file.
    let wait_for = |name: &str, text: &str| {
        wait_for_text(&dir.join(name), text);
    };
    let b = Builder::new().config(&table("kept.log", "*.*"));
    let config = b.dir().join("logger.toml");
    let d = b.arg("--listen=udp://127.0.0.1:0").start();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>t: before", d.addr("udp")).unwrap();
    wait_for("kept.log", "before");
    // Kept (same file), narrowed, and the same file named again (a second output); a new one.
    std::fs::write(
        &config,
        table("kept.log", "user.*") + &table("kept.log", "mail.*") + &table("added.log", "*.*"),
    )
    .unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("READY=1");
    udp.send_to(b"<13>t: after", d.addr("udp")).unwrap();
    udp.send_to(b"<22>t: mail-after", d.addr("udp")).unwrap();
    wait_for("added.log", "mail-after");
    // Removed: both outputs of kept.log go; what they held was written before.
    std::fs::write(&config, table("added.log", "*.*")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("READY=1");
    udp.send_to(b"<13>t: last", d.addr("udp")).unwrap();
    wait_for("added.log", "last");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("reload failed"), "{stderr}");
    let (kept, added) = (read("kept.log"), read("added.log"));
    assert!(kept.contains(": after"), "{kept}");
    assert_eq!(kept.matches("mail-after").count(), 1, "{kept}");
    assert!(!kept.contains("last"), "{kept}");
    assert!(!added.contains("before"), "{added}");
    assert!(added.contains(": after"), "{added}");
}

/// A daemon whose stderr output nobody reads (the test reads stderr only after the exit), with
/// the smallest queue, beside a file output; our own log goes to the same stderr.
fn stuck_stderr(policy: &str) -> Daemon {
    let b = Builder::new();
    let dir = b.dir().display().to_string();
    b.config(&format!(
        "listen = [\"unix://{dir}/log\"]\nheartbeat = \"0\"\nstop-timeout = \"1s\"\n\
         [[output]]\nto = \"stderr\"\nqueue-policy = \"{policy}\"\nqueue-size = 65536\n\
         [[output]]\nto = \"file:{dir}/out.log\"\n"
    ))
    .start()
}

/// Sends numbered 200-byte messages until `n` are sent or the socket stays full for a second
/// (the daemon holds the inputs back); returns how many were sent.
fn send_until_held_back(d: &Daemon, n: usize) -> usize {
    let sock = UnixDatagram::unbound().unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let pad = "p".repeat(180);
    for i in 0..n {
        let msg = format!("<13>app: stuck-{i:05} {pad}");
        if sock.send_to(msg.as_bytes(), d.path("log")).is_err() {
            return i;
        }
    }
    n
}

/// Waits (bounded) for a STATUS= that `wanted` accepts; `what` names it in the failure.
fn wait_for_status(d: &Daemon, what: &str, wanted: impl Fn(&str) -> bool) {
    within(WAIT, || {
        let datagram = d
            .notify
            .recv(Duration::from_millis(500))
            .unwrap_or_default();
        match datagram.lines().find_map(|l| l.strip_prefix("STATUS=")) {
            Some(status) if wanted(status) => Ok(()),
            _ => Err(format!("no STATUS= with {what}")),
        }
    })
}

/// The last STATUS= the daemon sent before it exited, from what is left in the socket.
fn last_status(d: &Daemon) -> String {
    let mut last = String::new();
    while let Some(datagram) = d.notify.recv(Duration::from_millis(200)) {
        if let Some(s) = datagram.lines().find_map(|l| l.strip_prefix("STATUS=")) {
            last = s.to_owned();
        }
    }
    last
}

/// The number after `counter` in a STATUS= or log line (`lost at stop 12`).
fn counter(text: &str, counter: &str) -> u64 {
    let at = text
        .find(counter)
        .unwrap_or_else(|| panic!("no '{counter}' in {text}"));
    text[at + counter.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after '{counter}' in {text}"))
}

/// Lines in the file.
fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

/// SIGTERM, and the bounded wait for the exit: stop-timeout (1 s) plus a second for each of our
/// own log lines that finds stderr full, with room for a busy machine.
fn stop_stuck(d: &mut Daemon) -> (std::process::Output, String) {
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let out = d.wait_exit(Duration::from_secs(30));
    (out, last_status(d))
}

fn a_stuck_output_that_drops_stalls_neither_the_others_nor_the_stop() {
    const N: usize = 3000;
    let mut d = stuck_stderr("drop");
    // 600 KB: far more than the pipe and the stderr queue hold together.
    assert_eq!(send_until_held_back(&d, N), N, "the inputs were held back");
    let file = d.path("out.log");
    eventually(
        &format!("the file output's {N} lines while stderr is stuck"),
        WAIT,
        || lines_in(&file) >= N,
    );
    // STATUS= counts what the stuck output dropped, per output.
    wait_for_status(&d, "stderr's drops", |status| {
        let stderr_part = status.split("stderr").nth(1).unwrap_or("");
        stderr_part.contains("dropped") && counter(stderr_part, "dropped") > 0
    });
    // So does `logger --status --json`, and the file output's count is the operator's too.
    let json = d.status_json();
    assert!(
        json_number(&json, "\"output\":\"stderr\"", "dropped").is_some_and(|n| n > 0),
        "{json}"
    );
    assert_eq!(
        json_number(&json, "\"output\":\"file:", "written"),
        Some(N as u64),
        "{json}"
    );
    let (out, last) = stop_stuck(&mut d);
    assert!(out.status.success(), "{}", out.status);
    assert_eq!(lines_in(&file), N);
    // What the stuck queue still held is counted as lost in the final status.
    assert!(counter(&last, "lost at stop") > 0, "{last}");
    assert!(counter(&last, "queue full") > 0, "{last}");
}

fn a_stuck_output_that_blocks_holds_the_inputs_back_and_the_stop_ends_on_time() {
    let mut d = stuck_stderr("block");
    // The stuck stderr queue fills and the inputs are held back: the socket fills up.
    let sent = send_until_held_back(&d, 100_000);
    assert!(sent < 100_000, "the inputs were never held back");
    let (out, last) = stop_stuck(&mut d);
    assert!(out.status.success(), "{}", out.status);
    let written = lines_in(&d.path("out.log")) as u64;
    // Every accepted message is written to the file, or counted as lost at the stop.
    let lost = counter(&last, "lost at stop");
    let received = counter(&last, "received");
    assert!(lost > 0, "{last}");
    assert!(
        written + lost >= received,
        "written {written} + lost {lost} < received {received}: {last}"
    );
}

/// `file:DIR/{hostname}/{program}.log` on a collector: one file per sender and program, hostile
/// names kept to one path component, a link a local user planted under the directory refused
/// (its lines rejected and counted) while the other hosts go on, and SIGHUP reopening them all.
fn a_collector_writes_per_host_files_and_follows_no_planted_link() {
    use std::os::unix::fs::PermissionsExt;
    let b = Builder::new();
    let dir = b.dir().to_owned();
    let remote = dir.join("remote");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(remote.join("web1")).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, remote.join("evil")).unwrap();
    let d = b
        .config(&format!(
            "heartbeat = \"0\"\n[[output]]\nto = \"file:{}/{{hostname}}/{{program}}.log\"\n",
            remote.display()
        ))
        .arg("--listen=udp://127.0.0.1:0")
        .start();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |line: &str| {
        udp.send_to(line.as_bytes(), d.addr("udp")).unwrap();
    };
    send("<38>Nov 24 05:00:00 web1 sshd[1]: web1-sshd");
    send("<13>Nov 24 05:00:00 evil app: into-the-link");
    send("<13>Nov 24 05:00:00 .. ..: dot-dot");
    send("<13>Nov 24 05:00:00 db-2 cron: db2-cron");
    wait_for_text(&remote.join("web1/sshd.log"), "web1-sshd");
    wait_for_text(&remote.join("db-2/cron.log"), "db2-cron");
    wait_for_text(&remote.join("__/__.log"), "dot-dot");
    // The planted link: nothing written through it, the refusal counted.
    wait_for_status(&d, "the refused lines counted", |status| {
        counter(status, "dropped") == 1
    });
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    let mode = std::fs::metadata(remote.join("db-2"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o027, 0, "directory mode {mode:o}");
    // logrotate moves every file; SIGHUP reopens each at its next line.
    std::fs::rename(remote.join("web1/sshd.log"), remote.join("web1/sshd.log.1")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("READY=1");
    send("<38>Nov 24 05:00:01 web1 sshd[1]: after-rotation");
    wait_for_text(&remote.join("web1/sshd.log"), "after-rotation");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

/// `queue-dir` on a file output whose filesystem is full: the messages wait in the queue on
/// another disk, a SIGKILL while the file takes nothing loses none of them, and once space
/// returns every one is written, once.
fn a_disk_queued_file_output_on_a_full_disk_loses_nothing_to_a_kill() {
    require!(
        is_root(),
        "root, to mount a full tmpfs in a private namespace"
    );
    require!(have("unshare") && have("nsenter"), "unshare and nsenter");
    let work = tempdir();
    let small = work.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let ready = work.path().join("ready");
    // A mount namespace held open across logger's restarts, where `small` is a full tmpfs.
    let script = format!(
        "mount -t tmpfs -o size=512k tmpfs {m} && touch {m}/out.log && \
         (head -c 1m /dev/zero > {m}/filler 2>/dev/null; true) && touch {r} && exec sleep 3600",
        m = small.display(),
        r = ready.display()
    );
    /// Ends the namespace however the test ends.
    struct Holder(std::process::Child);
    impl Drop for Holder {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let holder = Holder(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("the full tmpfs", WAIT, || ready.exists());
    let pid = holder.0.id().to_string();
    let inside = |args: &[&str]| {
        Command::new("nsenter")
            .args(["--mount", "--target", &pid, "--"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = small.join("out.log");
    let config = format!(
        "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
         [[output]]\nto = \"file:{}\"\nqueue-dir = \"{}\"\n",
        out.display(),
        work.path().join("queue").display()
    );
    let start = || {
        Builder::new()
            .config(&config)
            .wrapped_in(&["nsenter", "--mount", "--target", &pid, "--"])
            .start()
    };
    let anchor = format!("\"output\":\"file:{}\"", out.display());
    const N: usize = 3000;
    let d = start();
    let mut buf = Vec::new();
    for i in 0..N {
        let m = format!("<13>1 - host app - - - seq {i:06} {}", "x".repeat(100));
        buf.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
    }
    std::net::TcpStream::connect(d.addr("tcp"))
        .unwrap()
        .write_all(&buf)
        .unwrap();
    // Every message on the queue's disk, none in the file (it has no room).
    d.wait_for_status_count(&anchor, "disk_queued", N as u64);
    let written =
        || String::from_utf8_lossy(&inside(&["cat", &out.to_string_lossy()]).stdout).into_owned();
    assert!(!written().contains("seq "), "the full disk took a line");
    d.signal(nix::sys::signal::Signal::SIGKILL);
    drop(d);

    let d = start();
    assert!(
        inside(&["rm", &small.join("filler").to_string_lossy()])
            .status
            .success(),
        "free the tmpfs"
    );
    let count = || {
        let mut seen = BTreeMap::new();
        for line in written().lines() {
            if let Some(n) = line
                .split("seq ")
                .nth(1)
                .and_then(|r| r.get(..6))
                .and_then(|n| n.parse::<usize>().ok())
            {
                *seen.entry(n).or_insert(0usize) += 1;
            }
        }
        seen
    };
    let seen = within(WAIT, || {
        let seen = count();
        match seen.len() {
            n if n >= N => Ok(seen),
            n => Err(format!(
                "{n} of {N} lines in the file after space returned; logger says {}",
                d.status_json()
            )),
        }
    });
    let twice = seen.values().filter(|&&c| c > 1).count();
    assert_eq!(twice, 0, "lines written twice");
    d.wait_for_status_count(&anchor, "queued", 0);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{N} messages")) && stderr.contains("wait from before"),
        "the restart did not say what waited: {stderr}"
    );
}
