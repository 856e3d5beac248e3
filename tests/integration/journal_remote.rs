//! The journal across machines with the real systemd parts (Debian 12's, 252).
//!
//! The journal-remote output against systemd-journal-remote: numbered entries with custom and
//! trusted fields and a multi-line message uploaded, read back with `journalctl --directory -o
//! export` field for field; then the collector SIGKILLed while logger keeps taking messages
//! into its disk queue, logger SIGKILLed too, both restarted: nothing missing.
//!
//! The journal-remote input against stock systemd-journal-upload: a journal file of numbered
//! entries with a binary field uploaded through logger to systemd-journal-remote, compared
//! field for field with the file it came from; logger SIGKILLed in the middle of an upload and
//! journal-upload run again from its state file as its unit would: nothing missing, and what
//! comes twice is at most the interrupted request. Over HTTPS with mutual TLS: journal-upload's
//! own `--key/--cert/--trust`, and a client no CA of ours signed is refused.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    entries_reach_systemd_journal_remote_field_for_field_and_survive_kills,
    https_reaches_journal_remote_and_a_server_no_ca_of_ours_signed_gets_nothing,
    journal_upload_through_logger_reaches_journal_remote_field_for_field_and_survives_a_kill,
    journal_upload_over_mutual_tls_is_served_and_a_client_no_ca_of_ours_signed_is_not,
    hostile_uploads_are_refused_with_a_reason_and_a_real_one_is_served_meanwhile,
];

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const JOURNAL_UPLOAD: &str = "/lib/systemd/systemd-journal-upload";

/// systemd-journal-remote listening on `port`, writing one file in `dir`.
struct Collector {
    child: Child,
}

impl Collector {
    fn start(dir: &Path, port: u16) -> Collector {
        Collector::start_with(dir, port, &[&format!("--listen-http=127.0.0.1:{port}")])
    }

    fn start_with(dir: &Path, port: u16, listen: &[&str]) -> Collector {
        let child = Command::new(JOURNAL_REMOTE)
            .args(listen)
            .arg(format!("--output={}", dir.join("remote.journal").display()))
            .arg("--split-mode=none")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journal-remote");
        eventually("systemd-journal-remote listening", WAIT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Collector { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every entry in `dir` (the files journal-remote wrote, the one a kill left dirty too) as
/// journalctl's export format, split into entries of (field, value) text lines.
fn entries(dir: &Path, matches: &[&str]) -> Vec<BTreeMap<String, String>> {
    let place = if dir.is_dir() {
        "--directory"
    } else {
        "--file"
    };
    let out = Command::new("journalctl")
        .arg(format!("{place}={}", dir.display()))
        .args(["-o", "export", "--no-pager"])
        .args(matches)
        .output()
        .expect("journalctl");
    let mut all = Vec::new();
    let mut entry = BTreeMap::new();
    let mut bytes = out.stdout.as_slice();
    while !bytes.is_empty() {
        let end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        let line = &bytes[..end];
        bytes = &bytes[(end + 1).min(bytes.len())..];
        if line.is_empty() {
            if !entry.is_empty() {
                all.push(std::mem::take(&mut entry));
            }
            continue;
        }
        match line.iter().position(|&b| b == b'=') {
            Some(eq) => {
                entry.insert(
                    String::from_utf8_lossy(&line[..eq]).into_owned(),
                    String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
                );
            }
            None => {
                // The binary form: NAME, a 64-bit little-endian length, the value, a newline.
                let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                let value = &bytes[8..8 + len];
                entry.insert(
                    String::from_utf8_lossy(line).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                );
                bytes = &bytes[8 + len + 1..];
            }
        }
    }
    if !entry.is_empty() {
        all.push(entry);
    }
    all
}

/// How often each numbered entry is there.
fn numbers(entries: &[BTreeMap<String, String>]) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for e in entries {
        if let Some(n) = e.get("MY_FIELD").and_then(|v| v.strip_prefix("n")) {
            *seen.entry(n.parse().unwrap()).or_insert(0) += 1;
        }
    }
    seen
}

fn send(d: &Daemon, range: std::ops::Range<usize>) {
    let mut buf = Vec::new();
    for i in range {
        let m = format!(
            "<30>1 2026-12-07T15:37:24.{i:06}Z web1 nginx 4242 - \
             [fields@32473 _SYSTEMD_UNIT=\"nginx.service\" MY_FIELD=\"n{i}\"] line one of {i}\nline two"
        );
        write!(buf, "{} {m}", m.len()).unwrap();
    }
    std::net::TcpStream::connect(d.addr("tcp"))
        .unwrap()
        .write_all(&buf)
        .unwrap();
}

fn wait_for(dir: &Path, n: usize, d: &Daemon) -> BTreeMap<usize, usize> {
    let found = try_within(WAIT, || {
        let seen = numbers(&entries(dir, &[]));
        let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).collect();
        match missing.is_empty() {
            true => Ok(seen),
            false => Err(format!(
                "{} of entries 0..{n} missing from journal-remote's files (first {:?})",
                missing.len(),
                &missing[..missing.len().min(5)]
            )),
        }
    });
    found.unwrap_or_else(|why| {
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let per_file: Vec<_> = files
            .iter()
            .map(|p| {
                let out = Command::new("journalctl")
                    .arg(format!("--file={}", p.display()))
                    .args(["-o", "cat", "--no-pager", "--output-fields=MY_FIELD"])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                (
                    text.lines().count(),
                    text.lines().last().map(str::to_owned),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            })
            .collect();
        panic!(
            "{why}; files {files:?}; logger says {}; per file {per_file:?}",
            d.status_json()
        )
    })
}

fn entries_reach_systemd_journal_remote_field_for_field_and_survive_kills() {
    require!(
        Path::new(JOURNAL_REMOTE).exists(),
        "systemd-journal-remote (Debian's systemd-journal-remote package)"
    );
    let work = tempdir();
    let dir: PathBuf = work.path().join("remote");
    std::fs::create_dir(&dir).unwrap();
    let port = free_port();
    let mut collector = Collector::start(&dir, port);
    let config = format!(
        "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
         escape-control-characters = false\n\
         [[output]]\nto = \"journal-remote+http://127.0.0.1:{port}\"\nqueue-dir = \"{}\"\n",
        work.path().join("queue").display()
    );
    let start = || Builder::new().config(&config).start();

    // Field for field; the message keeps its newline raw (escaping off), so it travels in the
    // export format's binary form.
    let d = start();
    send(&d, 0..500);
    wait_for(&dir, 500, &d);
    let found = entries(&dir, &["_SYSTEMD_UNIT=nginx.service", "_HOSTNAME=web1"]);
    assert_eq!(
        numbers(&found).len(),
        500,
        "found by the origin's unit and host"
    );
    let e = found
        .iter()
        .find(|e| e.get("MY_FIELD").map(String::as_str) == Some("n7"))
        .unwrap();
    for (field, value) in [
        ("MESSAGE", "line one of 7\nline two"),
        ("SYSLOG_IDENTIFIER", "nginx"),
        ("SYSLOG_PID", "4242"),
        ("PRIORITY", "6"),
        ("SYSLOG_FACILITY", "3"),
        ("_HOSTNAME", "web1"),
        ("_SYSTEMD_UNIT", "nginx.service"),
        ("__REALTIME_TIMESTAMP", "1796657844000007"),
        ("LOGGER_TRANSPORT", "tcp"),
    ] {
        assert_eq!(
            e.get(field).map(String::as_str),
            Some(value),
            "{field} in {e:?}"
        );
    }

    // The collector killed mid-stream; what comes meanwhile waits in the disk queue; logger
    // killed too with the collector still down; both back: nothing missing.
    send(&d, 500..1500);
    collector.kill();
    send(&d, 1500..2000);
    let anchor = format!("\"output\":\"journal-remote+http://127.0.0.1:{port}\"");
    // Every message read from TCP (a kill loses what the socket held unread: TCP's, not ours)
    // and all that the collector did not take on disk.
    d.wait_for_status_count("\"totals\"", "received", 2000);
    eventually(
        "the disk queue holding what the collector did not take",
        WAIT,
        || {
            let json = d.status_json();
            let queued = json_number(&json, &anchor, "queued");
            queued.is_some_and(|q| q > 0) && queued == json_number(&json, &anchor, "disk_queued")
        },
    );
    d.signal(nix::sys::signal::Signal::SIGKILL);
    drop(d);
    let _collector = Collector::start(&dir, port);
    let d = start();
    send(&d, 2000..2100);
    let seen = wait_for(&dir, 2100, &d);
    let twice: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "journal-remote: 0 of 2,100 missing across a collector and a logger SIGKILL, {twice} twice"
    );
    assert!(twice <= 2000, "{twice} entries twice");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

/// `journal-remote+https`: we verify journal-remote's certificate against `tls-ca` and present
/// ours (Debian's journal-remote is built without `--trust`, so it does not check it). With
/// another CA, logger sends nothing and says why.
fn https_reaches_journal_remote_and_a_server_no_ca_of_ours_signed_gets_nothing() {
    require!(
        Path::new(JOURNAL_REMOTE).exists(),
        "systemd-journal-remote (Debian's systemd-journal-remote package)"
    );
    require!(have("openssl"), "openssl (the test PKI)");
    let work = tempdir();
    let pki = crate::tls::Pki::new(work.path());
    let other = crate::tls::Pki::new(&work.path().join("other"));
    let dir = work.path().join("remote");
    std::fs::create_dir(&dir).unwrap();
    let port = free_port();
    let _collector = Collector::start_with(
        &dir,
        port,
        &[
            &format!("--listen-https=127.0.0.1:{port}"),
            &format!("--key={}", pki.path("server.key")),
            &format!("--cert={}", pki.path("server.pem")),
        ],
    );
    let config = |ca: &str| {
        format!(
            "heartbeat = \"0\"\nstop-timeout = \"1s\"\nlisten = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"journal-remote+https://127.0.0.1:{port}\"\n\
             tls-ca = \"{ca}\"\ntls-cert = \"{}\"\ntls-key = \"{}\"\n",
            pki.path("client1.pem"),
            pki.path("client1.key")
        )
    };
    let d = Builder::new().config(&config(&pki.path("ca.pem"))).start();
    send(&d, 0..100);
    wait_for(&dir, 100, &d);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");

    let d = Builder::new()
        .config(&config(&other.path("ca.pem")))
        .start();
    send(&d, 100..110);
    let anchor = format!("\"output\":\"journal-remote+https://127.0.0.1:{port}\"");
    eventually(
        "an error for the certificate no CA of ours signed",
        WAIT,
        || json_number(&d.status_json(), &anchor, "errors").is_some_and(|n| n > 0),
    );
    assert_eq!(json_number(&d.status_json(), &anchor, "written"), Some(0));
    let (_, _, stderr) = d.stop();
    assert!(
        stderr.contains("certificate"),
        "the reason is said: {stderr}"
    );
    assert!(
        !numbers(&entries(&dir, &[])).contains_key(&105),
        "an entry reached a server we could not verify"
    );
}

/// A journal (a directory of files) of entries numbered `range` (`MY_FIELD=nI`), as a host's journal holds them:
/// trusted fields, its own time and boot, and a binary field (NUL, 0xff, a newline). Written by
/// systemd-journal-remote from an export stream, so it is journald's own file format.
fn source_journal(dir: &Path, name: &str, range: std::ops::Range<usize>) -> PathBuf {
    let mut export = Vec::new();
    for i in range {
        write!(
            export,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=web1\n\
             _SYSTEMD_UNIT=nginx.service\n_PID=4242\nSYSLOG_IDENTIFIER=nginx\nPRIORITY=4\n\
             MY_FIELD=n{i}\nMESSAGE=entry {i} of the source\n",
            1_796_657_844_000_000u64 + i as u64,
            1_000_000 + i
        )
        .unwrap();
        let mut blob = b"bin\0\xff\nline ".to_vec();
        blob.extend_from_slice(i.to_string().as_bytes());
        export.extend_from_slice(b"BLOB\n");
        export.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        export.extend_from_slice(&blob);
        export.extend_from_slice(b"\n\n");
    }
    let stream = dir.join(format!("{name}.export"));
    std::fs::write(&stream, export).unwrap();
    // A directory: journal-remote rotates a file that grows large, as journald does.
    let journal = dir.join(name);
    std::fs::create_dir(&journal).unwrap();
    let file = journal.join("source.journal");
    let out = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("--split-mode=none")
        .arg(&stream)
        .output()
        .expect("systemd-journal-remote writing the source journal");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    journal
}

/// Runs systemd-journal-upload over the journal in `dir` to `url` once, from its state file.
fn upload(dir: &Path, url: &str, state: &Path, tls: &[String]) -> std::process::Child {
    Command::new(JOURNAL_UPLOAD)
        .arg(format!("--url={url}"))
        .arg(format!("--directory={}", dir.display()))
        .arg(format!("--save-state={}", state.display()))
        .arg("--follow=no")
        .args(tls)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-journal-upload")
}

/// Runs journal-upload until it succeeds, as `Restart=on-failure` would (a few tries: the
/// daemon restarting after a kill refuses connections for a moment).
fn upload_until_done(dir: &Path, url: &str, state: &Path, tls: &[String]) {
    let mut failures = Vec::new();
    for _ in 0..5 {
        let out = wait_output(upload(dir, url, state, tls), WAIT * 3);
        if out.status.success() {
            return;
        }
        failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("systemd-journal-upload failed five times: {failures:#?}");
}

/// Fields a copy must carry as the source has them: all but the source file's own
/// bookkeeping (its cursor, sequence numbers, monotonic clock).
fn carried(entry: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    entry
        .iter()
        .filter(|(k, _)| !k.starts_with("__") || k.as_str() == "__REALTIME_TIMESTAMP")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn journal_upload_through_logger_reaches_journal_remote_field_for_field_and_survives_a_kill() {
    /// Entries in all: 300 compared field for field, the rest one upload long enough to be
    /// killed in the middle of.
    const TOTAL: usize = 100_300;
    require!(
        Path::new(JOURNAL_REMOTE).exists() && Path::new(JOURNAL_UPLOAD).exists(),
        "systemd-journal-remote and -upload (Debian's systemd-journal-remote package)"
    );
    let work = tempdir();
    let first = source_journal(work.path(), "first", 0..300);
    let dir: PathBuf = work.path().join("remote");
    std::fs::create_dir(&dir).unwrap();
    let collector_port = free_port();
    let _collector = Collector::start(&dir, collector_port);
    let port = free_port();
    let config = format!(
        "heartbeat = \"0\"\nrate-limit = 0\nescape-control-characters = false\n\
         listen = [\"journal-remote://127.0.0.1:{port}\"]\n\
         [[output]]\nto = \"journal-remote+http://127.0.0.1:{collector_port}\"\n\
         queue-dir = \"{}\"\n",
        work.path().join("queue").display()
    );
    let start = || Builder::new().config(&config).start();
    let url = format!("http://127.0.0.1:{port}");
    let state = work.path().join("upload.state");

    // Field for field: every field of every source entry, binary ones too, and its time.
    let d = start();
    upload_until_done(&first, &url, &state, &[]);
    wait_for(&dir, 300, &d);
    let source = entries(&first, &[]);
    let copies = entries(&dir, &[]);
    for original in &source {
        let n = &original["MY_FIELD"];
        let copy = copies
            .iter()
            .find(|c| c.get("MY_FIELD") == Some(n))
            .unwrap_or_else(|| panic!("{n} not at the collector"));
        for (field, value) in carried(original) {
            assert_eq!(
                copy.get(&field),
                Some(&value),
                "{field} of {n}: source {original:?}, copy {copy:?}"
            );
        }
    }
    assert_eq!(
        source[7]["BLOB"], "bin\0\u{fffd}\nline 7",
        "the binary field was compared"
    );

    // logger SIGKILLed in the middle of an upload; journal-upload fails, and is run again
    // from its state file until it succeeds.
    // Its own state file: a cursor of another journal file places journal-upload nowhere
    // useful (it is one journal's position).
    let second = source_journal(work.path(), "second", 300..TOTAL);
    let state = work.path().join("upload-second.state");
    let uploading = upload(&second, &url, &state, &[]);
    eventually("logger receiving the second upload", WAIT, || {
        json_number(&d.status_json(), "\"totals\"", "received").is_some_and(|n| n >= 2_300)
    });
    d.signal(nix::sys::signal::Signal::SIGKILL);
    drop(d);
    let interrupted = wait_output(uploading, WAIT);
    let d = start();
    upload_until_done(&second, &url, &state, &[]);
    let seen = wait_for(&dir, TOTAL, &d);
    let twice: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "journal-upload -> logger -> journal-remote: 0 of {TOTAL} missing across a logger \
         SIGKILL mid-upload, {twice} twice"
    );
    assert!(
        !interrupted.status.success(),
        "the kill came after the upload was done: not the scenario"
    );
    // journal-upload saves its cursor only when a request is answered 2xx: what the killed
    // request carried comes again, and nothing more (one request: the whole second file).
    assert!(twice <= TOTAL - 300, "{twice} entries twice");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

fn journal_upload_over_mutual_tls_is_served_and_a_client_no_ca_of_ours_signed_is_not() {
    require!(
        Path::new(JOURNAL_REMOTE).exists() && Path::new(JOURNAL_UPLOAD).exists(),
        "systemd-journal-remote and -upload (Debian's systemd-journal-remote package)"
    );
    require!(have("openssl"), "openssl (the test PKI)");
    let work = tempdir();
    let pki = crate::tls::Pki::new(work.path());
    let other = crate::tls::Pki::new(&work.path().join("other"));
    let file = source_journal(work.path(), "source", 0..50);
    let port = free_port();
    let out = work.path().join("out.log");
    let config = format!(
        "heartbeat = \"0\"\nrate-limit = 0\n\
         [[input]]\nlisten = \"journal-remote+https://127.0.0.1:{port}\"\n\
         tls-cert = \"{}\"\ntls-key = \"{}\"\ntls-client-ca = \"{}\"\n\
         [[output]]\nto = \"file:{}\"\nformat = \"json\"\n",
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
        out.display()
    );
    let d = Builder::new().config(&config).start();
    let url = format!("https://127.0.0.1:{port}");
    let tls = |p: &crate::tls::Pki| {
        vec![
            format!("--key={}", p.path("client1.key")),
            format!("--cert={}", p.path("client1.pem")),
            format!("--trust={}", pki.path("ca.pem")),
        ]
    };
    upload_until_done(&file, &url, &work.path().join("state"), &tls(&pki));
    let text = wait_for_lines(&out, 50);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.contains("\"hostname\":\"web1\"") && first.contains("\"MY_FIELD\":\"n0\""),
        "{first}"
    );

    // A client certificate no CA of ours signed: refused at the handshake, nothing taken.
    let refused = wait_output(
        upload(&file, &url, &work.path().join("state2"), &tls(&other)),
        WAIT,
    );
    assert!(!refused.status.success(), "journal-upload was served");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 50);
    assert!(stderr.contains("TLS"), "the refusal is said: {stderr}");
}

/// Sends `wire` on a new connection and returns what logger answers before it closes.
fn answer_to(addr: &str, wire: &[u8]) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(wire).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// As a LAN host would attack the input: a request that is not an upload, a binary field that
/// declares 2^63 bytes, a body that is not the export format, an upload that stalls inside an
/// entry. Each is refused with journal-remote's status (or closed at frame-timeout) and
/// counted; stock journal-upload is served meanwhile and nothing of the hostile ones arrives.
fn hostile_uploads_are_refused_with_a_reason_and_a_real_one_is_served_meanwhile() {
    require!(
        Path::new(JOURNAL_REMOTE).exists() && Path::new(JOURNAL_UPLOAD).exists(),
        "systemd-journal-remote and -upload (Debian's systemd-journal-remote package)"
    );
    let work = tempdir();
    let file = source_journal(work.path(), "source", 0..100);
    let out = work.path().join("out.log");
    let d = Builder::new()
        .config(&format!(
            "heartbeat = \"0\"\nframe-timeout = \"2s\"\n\
             listen = [\"journal-remote://127.0.0.1:0\"]\n\
             [[output]]\nto = \"file:{}\"\nformat = \"json\"\n",
            out.display()
        ))
        .start();
    let addr = d.addr("journal-remote");
    let head = "POST /upload HTTP/1.1\r\nContent-Type: application/vnd.fdo.journal\r\n\
                Transfer-Encoding: chunked\r\n\r\n";

    // Stalls inside an entry: closed at frame-timeout, while the others are served.
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(format!("{head}10\r\nMESSAGE=never-en").as_bytes())
        .unwrap();

    let answer = answer_to(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    let mut huge = format!("{head}d\r\nMESSAGE=huge\n\r\n").into_bytes();
    huge.extend_from_slice(b"d\r\nBLOB\n");
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    huge.extend_from_slice(b"\r\n");
    let answer = answer_to(&addr, &huge);
    assert!(
        answer.starts_with("HTTP/1.1 400 ") && answer.contains("binary field"),
        "{answer}"
    );
    let answer = answer_to(
        &addr,
        format!("{head}12\r\nnot the format at all\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

    upload_until_done(
        &file,
        &format!("http://{addr}"),
        &work.path().join("state"),
        &[],
    );
    wait_for_lines(&out, 100);
    assert!(
        closed_by_peer(&mut stalled, WAIT),
        "the stalled upload is closed at frame-timeout"
    );
    let json = d.status_json();
    assert_eq!(
        json_number(&json, "\"refused\"", "upload_error"),
        Some(3),
        "{json}"
    );
    assert_eq!(json_number(&json, "\"refused\"", "slow"), Some(1), "{json}");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines().count(),
        100,
        "the real entries; none of the broken ones"
    );
    assert!(
        !text.contains("never-en"),
        "a stalled entry is not half taken"
    );
    assert!(
        stderr.contains("refused an upload from 127.0.0.1"),
        "{stderr}"
    );
}
