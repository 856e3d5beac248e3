//! The harness: start the real binary with a real NOTIFY_SOCKET, wait on its notifications with
//! bounded timeouts, drive it with real clients, stop it and read what it wrote.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_logger");
pub const WAIT: Duration = Duration::from_secs(10);

/// True when the suite must not skip anything (CI sets LOGGER_TEST_STRICT=1).
pub fn strict() -> bool {
    std::env::var_os("LOGGER_TEST_STRICT").is_some_and(|v| v == "1")
}

/// Ends the test as `ignored, needs WHY` in the runner's output, or, in strict mode, fails it,
/// when a requirement is missing.
#[macro_export]
macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            $crate::harness::skip(&format!("needs {}", $why));
        }
    };
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One datagram within `timeout`. A timed receive is not restarted after the process is
/// stopped and continued, or frozen and thawed (signal(7)): it fails with EINTR, which here
/// means "keep waiting for what is left of the timeout", never "nothing came".
pub fn recv_within(sock: &UnixDatagram, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
    retry_within(timeout, |left| {
        sock.set_read_timeout(Some(left))?;
        sock.recv(buf)
    })
}

/// Calls `attempt` with the time left until it does anything but fail with EINTR, or the
/// time is up (then the last result, which is a timeout or EINTR, is returned).
pub fn retry_within<T>(
    timeout: Duration,
    mut attempt: impl FnMut(Duration) -> io::Result<T>,
) -> io::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_millis(1));
        match attempt(left) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && Instant::now() < deadline => {}
            other => return other,
        }
    }
}

/// A NOTIFY_SOCKET the test owns: the real sd_notify protocol.
pub struct NotifySocket {
    pub path: PathBuf,
    sock: UnixDatagram,
}

impl NotifySocket {
    pub fn new(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        NotifySocket { path, sock }
    }

    /// The next datagram within `timeout`, or None.
    pub fn recv(&self, timeout: Duration) -> Option<String> {
        let mut buf = vec![0u8; 8192];
        match recv_within(&self.sock, &mut buf, timeout) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Waits for a datagram with a line equal to `line` (e.g. "READY=1"); returns that datagram.
    /// Panics with everything received if it does not come within WAIT.
    pub fn expect(&self, line: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(d) if d.lines().any(|l| l == line) => return d,
                Some(d) => seen.push(d),
                None => break,
            }
        }
        panic!("no {line} within {WAIT:?}; received {seen:?}");
    }
}

/// A running daemon under test.
pub struct Daemon {
    pub child: Child,
    pub notify: NotifySocket,
    pub dir: tempfile::TempDir,
    /// The datagram that carried READY=1.
    pub ready: String,
}

pub struct Builder {
    /// A command that execs the daemon (setpriv, say), if any.
    wrapper: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    config: Option<String>,
    dir: tempfile::TempDir,
}

pub fn tempdir() -> tempfile::TempDir {
    // Under /tmp would do, but the systemd tests share a mount namespace with a booted systemd
    // whose PrivateTmp must not hide our files: keep test files under the target directory.
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tempfile::Builder::new()
        .prefix("it-")
        .tempdir_in(base)
        .expect("tempdir")
}

/// Puts the daemon at `path` as a hard link, never as a copy: a copy is written through a file
/// descriptor that a test forking on another thread inherits until its exec, and executing the
/// copy meanwhile fails with ETXTBSY ("Text file busy"). A link opens nothing for writing.
pub fn install_daemon(path: &Path) {
    std::fs::hard_link(BIN, path)
        .unwrap_or_else(|e| panic!("link {BIN} to {}: {e}", path.display()));
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            wrapper: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            config: None,
            dir: tempdir(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(mut self, a: impl Into<String>) -> Builder {
        self.args.push(a.into());
        self
    }

    /// Runs the daemon through `command`, which must exec it (so the pid stays the daemon's).
    pub fn wrapped_in(mut self, command: &[&str]) -> Builder {
        self.wrapper = command.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Builder {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Writes a config file and passes --config.
    pub fn config(mut self, text: &str) -> Builder {
        self.config = Some(text.into());
        self
    }

    /// Listens on loopback UDP and TCP with port 0, a datagram socket and a stream socket in the
    /// test directory, and writes to a file there.
    pub fn standard(self) -> Builder {
        let dir = self.dir().to_owned();
        self.arg("--listen=udp://127.0.0.1:0")
            .arg("--listen=tcp://127.0.0.1:0")
            .arg(format!("--listen=unix://{}/log", dir.display()))
            .arg(format!("--listen=unix-stream://{}/stream", dir.display()))
            .arg(format!("--output=file:{}/out.log", dir.display()))
    }

    fn command(&self, notify: &NotifySocket) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.args(&self.args)
            .env("NOTIFY_SOCKET", &notify.path)
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env("XDG_RUNTIME_DIR", self.dir())
            // Its own runtime directory: the control socket (and a default local socket) of
            // each test's daemon apart from every other's.
            .env("RUNTIME_DIRECTORY", self.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if self.config.is_some() {
            cmd.arg(format!(
                "--config={}",
                self.dir().join("logger.toml").display()
            ));
        }
        cmd
    }

    fn write_config(&self) {
        if let Some(text) = &self.config {
            std::fs::write(self.dir().join("logger.toml"), text).unwrap();
        }
    }

    /// Starts the daemon and waits for READY=1.
    pub fn start(self) -> Daemon {
        self.write_config();
        let notify = NotifySocket::new(self.dir());
        let mut child = self.command(&notify).spawn().expect("spawn logger");
        let ready = {
            let deadline = Instant::now() + WAIT;
            let mut seen = Vec::new();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "logger exited with {status} before READY; stderr: {}; notifications {seen:?}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                match notify.recv(Duration::from_millis(100)) {
                    Some(d) if d.lines().any(|l| l == "READY=1") => break d,
                    Some(d) => seen.push(d),
                    None if Instant::now() > deadline => panic!("no READY=1 within {WAIT:?}"),
                    None => {}
                }
            }
        };
        Daemon {
            child,
            notify,
            dir: self.dir,
            ready,
        }
    }

    /// Runs the daemon expecting it to fail before READY; returns its output and the
    /// notifications it sent.
    pub fn fail(self) -> (Output, Vec<String>) {
        self.write_config();
        let notify = NotifySocket::new(self.dir());
        let child = self.command(&notify).spawn().expect("spawn logger");
        let out = wait_output(child, WAIT);
        let mut sent = Vec::new();
        while let Some(d) = notify.recv(Duration::from_millis(50)) {
            sent.push(d);
        }
        (out, sent)
    }
}

/// Waits for a child with a bound; kills it and panics if it overruns.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "process did not exit within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Daemon {
    /// Waits (bounded) for a STATUS= that shows an output holding messages (not `queued 0`):
    /// an output that stopped taking them, as the test arranged.
    pub fn wait_queued_status(&self, what: &str) {
        within(WAIT, || {
            let status = self.notify.recv(Duration::from_millis(500));
            match status {
                Some(s) if s.contains("STATUS=") && !s.contains("queued 0") => Ok(()),
                _ => Err(what.to_owned()),
            }
        })
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).expect("signal logger");
    }

    /// The bound address for a scheme, from the READY status ("udp", "tcp", ...).
    pub fn addr(&self, scheme: &str) -> String {
        let prefix = format!("{scheme}://");
        self.ready
            .lines()
            .find_map(|l| l.strip_prefix("STATUS="))
            .and_then(|s| {
                s.split([' ', ',', ';'])
                    .find_map(|w| w.strip_prefix(&prefix).map(str::to_owned))
            })
            .unwrap_or_else(|| panic!("no {scheme} address in {:?}", self.ready))
    }

    pub fn port(&self, scheme: &str) -> String {
        self.addr(scheme).rsplit(':').next().unwrap().to_owned()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What `logger --status --json` says of this daemon, as an operator would ask it (its
    /// control socket is in its runtime directory, the test directory).
    pub fn status_json(&self) -> String {
        let child = Command::new(BIN)
            .args(["--status", "--json"])
            .env("RUNTIME_DIRECTORY", self.dir.path())
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run logger --status --json");
        let out = wait_output(child, WAIT + WAIT);
        assert!(
            out.status.success(),
            "logger --status --json: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Waits (bounded) until `logger --status --json` shows `key` at `n` after `anchor` (the
    /// first object holding it: `"totals"`, `"output":"file:..."`), and returns the JSON.
    pub fn wait_for_status_count(&self, anchor: &str, key: &str, n: u64) -> String {
        within(WAIT, || {
            let json = self.status_json();
            match json_number(&json, anchor, key) {
                Some(found) if found == n => Ok(json),
                _ => Err(format!(
                    "logger --status --json showing {key} {n} after {anchor}; the last answer: {json}"
                )),
            }
        })
    }

    /// SIGTERM, wait for exit (bounded), return the status, what it wrote to out.log, and its
    /// stderr.
    pub fn stop(self) -> (ExitStatus, String, String) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.stop_after_signal()
    }

    /// Like `stop`, for a test that already sent the signal.
    pub fn stop_after_signal(mut self) -> (ExitStatus, String, String) {
        let out = self.wait_exit(WAIT);
        let log = std::fs::read_to_string(self.path("out.log")).unwrap_or_default();
        (
            out.status,
            log,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Daemon {
    /// Waits for the daemon to exit (after a signal the test sent), at most `limit`; its
    /// notification socket stays readable.
    pub fn wait_exit(&mut self, limit: Duration) -> Output {
        wait_output(
            std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap()),
            limit,
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs util-linux logger(1) with these arguments; panics if it fails.
pub fn send(args: &[&str]) {
    let out = Command::new("/usr/bin/logger")
        .args(args)
        .output()
        .expect("run util-linux logger");
    assert!(
        out.status.success(),
        "logger {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lines of the output file without their timestamp.
pub fn lines_without_time(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
        .collect()
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// True once the peer has closed `s` (read returns 0 or a reset), within `limit`.
pub fn closed_by_peer(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        match std::io::Read::read(s, &mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => {}
        }
    }
    false
}

/// A real rsyslogd 8 in the foreground with a configuration of the test's, in a directory of its
/// own (its work directory, PID file and whatever the configuration writes there): the one
/// rsyslog fixture of the suite (a reference writing files, a RELP collector, a relay).
pub struct Rsyslog {
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
}

impl Rsyslog {
    /// Starts `rsyslogd -n` with `body` after a `global(workDirectory=...)` line, in the
    /// environment given (TZ, say). `{dir}` in `body` is replaced by its directory.
    pub fn start(body: &str, env: &[(&str, &str)]) -> Rsyslog {
        Rsyslog::start_with_global("", body, env)
    }

    /// `start`, with `global` added to the `global(...)` settings (`, defaultNetstreamDriver=...`).
    pub fn start_with_global(global: &str, body: &str, env: &[(&str, &str)]) -> Rsyslog {
        let dir = tempdir();
        let body = body.replace("{dir}", &dir.path().display().to_string());
        std::fs::write(
            dir.path().join("rsyslog.conf"),
            format!(
                "global(workDirectory=\"{}\"{global})\n{body}\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut rsyslog = Rsyslog {
            child: None,
            env,
            dir,
        };
        rsyslog.run();
        rsyslog
    }

    /// Starts it (again, after `kill`) with the same configuration.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "rsyslogd is already running");
        let mut cmd = Command::new("rsyslogd");
        cmd.args(["-n", "-i"])
            .arg(self.path("rsyslog.pid"))
            .arg("-f")
            .arg(self.path("rsyslog.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start rsyslogd"));
    }

    /// Waits (bounded) until it takes TCP connections on `port`.
    pub fn wait_listening(&self, port: u16) {
        eventually("rsyslogd listening", WAIT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// SIGKILL and reap: what it held in memory is gone, as after a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (bounded); panics unless it exits cleanly. Its directory stays.
    pub fn stop(&mut self) {
        let child = self.child.take().expect("rsyslogd is running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = wait_output(child, WAIT);
        assert!(
            out.status.success(),
            "rsyslogd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (bounded) until `condition` holds, polling every 20 ms; panics naming `what`.
pub fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    within(limit, || {
        condition().then_some(()).ok_or_else(|| what.to_owned())
    });
}

/// Polls `attempt` (every 20 ms) until it gives a value, and returns it; at `limit`, panics with
/// the last reason it gave (which says what was missing, as of then).
pub fn within<T>(limit: Duration, attempt: impl FnMut() -> Result<T, String>) -> T {
    try_within(limit, attempt).unwrap_or_else(|why| panic!("{why} (waited {limit:?})"))
}

/// `within`, handing back the last reason at `limit` (for a caller that adds what the daemon
/// said before it fails).
pub fn try_within<T>(
    limit: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(why) if Instant::now() >= deadline => return Err(why),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Waits (bounded) until the file at `path` holds `text`, and returns what it holds.
pub fn wait_for_text(path: &Path, text: &str) -> String {
    let mut held = String::new();
    eventually(&format!("{text:?} in {}", path.display()), WAIT, || {
        held = std::fs::read_to_string(path).unwrap_or_default();
        held.contains(text)
    });
    held
}

/// Waits (bounded) until the file at `path` holds `lines` lines, and returns its text.
pub fn wait_for_lines(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    eventually(
        &format!("{} lines in {}", lines, path.display()),
        WAIT,
        || {
            text = std::fs::read_to_string(path).unwrap_or_default();
            text.lines().count() >= lines
        },
    );
    text
}

/// The number after `"key":` in the first object of `json` that holds `anchor`.
pub fn json_number(json: &str, anchor: &str, key: &str) -> Option<u64> {
    let from = json.find(anchor)?;
    let needle = format!("\"{key}\":");
    let at = from + json[from..].find(&needle)? + needle.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// How often each numbered line `{prefix}{n}` is in the file at `path` (a message written
/// several times counts several times).
pub fn numbered(path: &Path, prefix: &str) -> std::collections::BTreeMap<usize, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        if let Some(rest) = line.split(prefix).nth(1)
            && let Ok(n) = rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
        {
            *seen.entry(n).or_default() += 1;
        }
    }
    seen
}

/// Waits (bounded) until every numbered line `{prefix}0` .. `{prefix}{n-1}` is in the file, and
/// returns how often each is there.
pub fn wait_for_numbered(
    path: &Path,
    prefix: &str,
    n: usize,
) -> std::collections::BTreeMap<usize, usize> {
    let mut seen = std::collections::BTreeMap::new();
    eventually(&format!("{prefix}0..{prefix}{n}"), WAIT, || {
        seen = numbered(path, prefix);
        (0..n).all(|i| seen.contains_key(&i))
    });
    seen
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a peer that needs a fixed port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The scenario the journal and kernel log inputs share: a reading input forwards over RELP
/// with a disk queue to a logger collector on `port` (writing JSON to `out`), while its own
/// position file can never be saved. `start` starts the reader, `write(from, to)` adds numbered
/// records `{prefix}N` to the log it reads. SIGKILL once all was acknowledged, and once with
/// the collector down and the records in the queue alone: every record reaches the collector
/// once, because the queue keeps the position with the records.
pub fn disk_queued_reader_is_killed_twice(
    port: u16,
    out: &Path,
    prefix: &str,
    start: &dyn Fn() -> Daemon,
    write: &dyn Fn(usize, usize),
) {
    let collector_config = format!(
        "heartbeat = \"0\"\nlisten = [\"relp://127.0.0.1:{port}\"]\n\
         [[output]]\nto = \"file:{}\"\nformat = \"json\"\n",
        out.display()
    );
    let collector = || Builder::new().config(&collector_config).start();
    let anchor = format!("\"output\":\"relp://127.0.0.1:{port}\"");
    let once = |n: usize| {
        let seen = wait_for_numbered(out, prefix, n);
        let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
        assert!(twice.is_empty(), "read twice: {twice:?}");
        assert_eq!(seen.len(), n, "more than written: {seen:?}");
    };

    // Delivered, acknowledged, the queue empty: then SIGKILL and a restart.
    let c = collector();
    let d = start();
    write(0, 300);
    once(300);
    d.wait_for_status_count(&anchor, "queued", 0);
    d.signal(nix::sys::signal::Signal::SIGKILL);
    drop(d);
    let d = start();
    write(300, 400);
    once(400);
    d.wait_for_status_count(&anchor, "queued", 0);

    // The collector down: the records wait in the disk queue alone when the reader is killed.
    drop(c);
    write(400, 600);
    d.wait_for_status_count(&anchor, "queued", 200);
    d.signal(nix::sys::signal::Signal::SIGKILL);
    drop(d);
    let _c = collector();
    let d = start();
    write(600, 700);
    once(700);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}
