//! What an operator asks the running daemon: `logger --status [--json]`, `logger --reload` that
//! fails visibly, and the Prometheus metrics, read by a real Prometheus and checked by promtool.
//! The control socket keeps other users out and outlasts garbage and floods.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    status_shows_a_dead_remote_disconnected_with_its_queue_growing_and_refusals_by_reason,
    a_refused_reload_fails_with_its_reason_and_the_running_configuration_serves,
    the_control_socket_keeps_other_users_out_and_outlasts_garbage_and_floods,
    prometheus_scrapes_the_counters_and_promtool_finds_nothing_wrong,
];

/// Runs `logger ARGS` as an operator would, against the daemon whose runtime directory is
/// `dir` (where it placed its control socket).
fn ask(dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .env("RUNTIME_DIRECTORY", dir)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run logger --status");
    wait_output(child, WAIT + WAIT)
}

fn status_json(dir: &Path) -> String {
    let out = ask(dir, &["--status", "--json"]);
    assert!(
        out.status.success(),
        "logger --status --json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The number after `"key":` in the first object of `json` that holds `anchor`.
fn number(json: &str, anchor: &str, key: &str) -> u64 {
    json_number(json, anchor, key).unwrap_or_else(|| panic!("no {key} after {anchor} in {json}"))
}

fn status_shows_a_dead_remote_disconnected_with_its_queue_growing_and_refusals_by_reason() {
    let dead = free_port();
    let work = tempdir();
    let log = work.path().join("all.log");
    let d = Builder::new()
        .config(&format!(
            "listen = [\"udp://127.0.0.1:0\"]\nstop-timeout = \"1s\"\n\
             [[input]]\nlisten = \"tcp://127.0.0.1:0\"\nallow = [\"192.0.2.0/24\"]\n\
             [[output]]\nto = \"file:{}\"\n\
             [[output]]\nto = \"tcp://127.0.0.1:{dead}\"\n",
            log.display()
        ))
        .start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |from: usize, n: usize| {
        for i in from..from + n {
            udp.send_to(format!("<13>app: m{i}").as_bytes(), d.addr("udp"))
                .unwrap();
        }
    };
    send(0, 50);
    wait_for_lines(&log, 50);
    // Three connections from a network the allow-list leaves out.
    for _ in 0..3 {
        let mut c = TcpStream::connect(d.addr("tcp")).unwrap();
        assert!(
            closed_by_peer(&mut c, WAIT),
            "a refused connection stayed open"
        );
    }
    let remote = format!("\"output\":\"tcp://127.0.0.1:{dead}\"");
    let mut first = String::new();
    eventually(
        "the dead remote shown with an error and 50 queued",
        WAIT,
        || {
            first = status_json(d.dir.path());
            number(&first, &remote, "queued") == 50
                && first.contains("\"connected\":false,\"remote\":null,\"error\":\"")
        },
    );
    assert_eq!(
        number(&first, "\"listen\":\"udp://127.0.0.1:0\"", "received"),
        50
    );
    assert_eq!(
        number(&first, "\"listen\":\"tcp://127.0.0.1:0\"", "not_allowed"),
        3
    );
    assert_eq!(number(&first, "\"totals\"", "received"), 50);
    assert_eq!(number(&first, "\"output\":\"file:", "written"), 50);
    send(50, 70);
    wait_for_lines(&log, 120);
    eventually("the dead remote's queue grows", WAIT, || {
        number(&status_json(d.dir.path()), &remote, "queued") == 120
    });
    let text = ask(d.dir.path(), &["--status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("refused: not_allowed 3") && text.contains("disconnected: "),
        "{text}"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

fn a_refused_reload_fails_with_its_reason_and_the_running_configuration_serves() {
    let work = tempdir();
    let (first, second) = (
        work.path().join("first.log"),
        work.path().join("second.log"),
    );
    let port = {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = |output: &Path| {
        format!(
            "listen = [\"udp://127.0.0.1:{port}\"]\n[[output]]\nto = \"file:{}\"\n",
            output.display()
        )
    };
    let d = Builder::new().config(&config(&first)).start();
    let file = d.dir.path().join("logger.toml");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>app: before", ("127.0.0.1", port))
        .unwrap();
    wait_for_lines(&first, 1);

    std::fs::write(&file, "listen = [\"udp://nonsense\"]\n").unwrap();
    let refused = ask(d.dir.path(), &["--reload"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(78), "{said}");
    assert!(
        said.contains("reload refused") && said.contains("nonsense"),
        "{said}"
    );
    udp.send_to(b"<13>app: still served", ("127.0.0.1", port))
        .unwrap();
    wait_for_lines(&first, 2);
    let json = status_json(d.dir.path());
    assert!(json.contains("\"ok\":false,\"error\":\""), "{json}");

    std::fs::write(&file, config(&second)).unwrap();
    let applied = ask(d.dir.path(), &["--reload"]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    udp.send_to(b"<13>app: after", ("127.0.0.1", port)).unwrap();
    let text = wait_for_lines(&second, 1);
    assert!(text.contains("after"), "{text}");
    assert!(status_json(d.dir.path()).contains("\"ok\":true,\"error\":null"));
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

fn the_control_socket_keeps_other_users_out_and_outlasts_garbage_and_floods() {
    require!(is_root(), "root (to ask as another user)");
    require!(have("setpriv"), "setpriv (util-linux)");
    let work = tempdir();
    let log = work.path().join("out.log");
    let d = Builder::new()
        .arg("--listen=udp://127.0.0.1:0")
        .arg(format!("--output=file:{}", log.display()))
        .start();
    let dir = d.dir.path();
    let socket = dir.join("control");
    let as_nobody = |args: &[&str]| {
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(BIN)
            .args(args)
            .env("RUNTIME_DIRECTORY", dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, WAIT)
    };
    // Mode 0600: another user cannot even connect.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(std::fs::metadata(&socket).unwrap().mode() & 0o777, 0o600);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&["--status"]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ermission denied"));
    // A file made too permissive: the peer's credentials still keep it out.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&["--status"]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not allowed"),
        "{out:?}"
    );

    // Garbage gets an error; silent clients hold a slot for a bounded time; a flood of
    // connections opened and closed at once.
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage
        .write_all(&[0xffu8; 10_000])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut reply = String::new();
    garbage.set_read_timeout(Some(WAIT)).unwrap();
    let _ = garbage.read_to_string(&mut reply);
    assert!(reply.starts_with("error\n"), "{reply:?}");
    let silent: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    for _ in 0..300 {
        drop(UnixStream::connect(&socket).unwrap());
    }
    // Meanwhile the loop serves as ever.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>app: during the flood", d.addr("udp"))
        .unwrap();
    wait_for_lines(&log, 1);
    drop(silent);
    let mut json = String::new();
    eventually("logger --status answers after the flood", WAIT, || {
        let out = ask(dir, &["--status", "--json"]);
        json = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert_eq!(number(&json, "\"totals\"", "received"), 1);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(!socket.exists(), "the control socket outlived the daemon");
}

fn prometheus_scrapes_the_counters_and_promtool_finds_nothing_wrong() {
    require!(
        have("prometheus") && have("promtool"),
        "prometheus and promtool (Debian package prometheus)"
    );
    let port = free_port();
    let work = tempdir();
    let log = work.path().join("out.log");
    let d = Builder::new()
        .config(&format!(
            "listen = [\"udp://127.0.0.1:0\"]\nmetrics-listen = \"127.0.0.1:{port}\"\n\
             metrics-allow = [\"127.0.0.0/8\"]\n[[output]]\nto = \"file:{}\"\n",
            log.display()
        ))
        .start();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..42 {
        udp.send_to(format!("<13>app: m{i}").as_bytes(), d.addr("udp"))
            .unwrap();
    }
    wait_for_lines(&log, 42);
    let scrape = || -> String {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        reply
    };
    let reply = scrape();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        body.contains("logger_input_received_total{input=\"udp://127.0.0.1:0\"} 42"),
        "{body}"
    );
    assert!(
        body.contains("logger_output_written_total{output=\"file:"),
        "{body}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = wait_output(promtool, WAIT);
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // A real Prometheus scrapes it, and its query API returns the count the test sent.
    let web = free_port();
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: logger\n    \
             static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let query = || -> Option<String> {
        let mut c = TcpStream::connect(("127.0.0.1", web)).ok()?;
        c.write_all(
            b"GET /api/v1/query?query=logger_input_received_total HTTP/1.1\r\nHost: x\r\n\
              Connection: close\r\n\r\n",
        )
        .ok()?;
        let mut reply = String::new();
        c.read_to_string(&mut reply).ok()?;
        Some(reply)
    };
    let mut answer = String::new();
    let found = (0..600).any(|_| {
        answer = query().unwrap_or_default();
        let ok = answer.contains("\"job\":\"logger\"") && answer.contains(",\"42\"]");
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(found, "Prometheus never returned 42: {answer}");
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}
