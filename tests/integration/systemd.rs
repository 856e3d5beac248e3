//! The operator's commands against a real systemd 252 and a real journald: one systemd booted in
//! a PID + mount namespace (tests/systemd/boot.sh) runs every scenario in order, so the suite pays
//! for one boot, and each scenario is reported on its own (a failure hides no later one).
//! Needs root; mandatory in CI.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Sequence;
use crate::support::*;

/// The scenarios of this module, for the harness: in this order, on one booted systemd, each
/// reported on its own; each one that needs the service up or down says so first, so it also
/// runs alone (`cargo test systemd::journalctl`).
pub const SCENARIOS: Sequence = (
    tests![
        the_shipped_units_verify_clean_and_expose_little,
        start_returns_once_ready_and_shows_the_status,
        journalctl_shows_our_lines_and_relayed_messages_with_their_fields,
        a_reload_is_visible_and_a_refused_one_fails_systemctl_reload,
        a_stop_is_clean_quick_and_loses_nothing,
        the_watchdog_kills_a_frozen_loop_and_systemd_restarts_it,
        socket_activation_restarts_under_load_lose_nothing,
        journald_restarts_under_load_lose_nothing,
        a_sigkill_under_socket_activation_loses_nothing_queued,
        the_debian_package_installs_upgrades_and_purges,
    ],
    end_systemd,
);

/// Where the scenarios put their drop-ins for logger.service (inside the namespace's /run).
const DROP_IN_DIR: &str = "/run/systemd/system/logger.service.d";
/// Booting takes under a second here; a loaded machine gets this much beyond the usual wait.
const BOOT_GRACE: Duration = Duration::from_secs(20);

struct Systemd {
    unshare: Child,
    pid: i32,
    /// Held while the namespace lives: two booted systemds at once (two test runs on one
    /// machine) were seen to keep each other from booting.
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Systemd {
    fn boot() -> Systemd {
        let lock = std::fs::File::create("/tmp/logger-e2e-systemd.lock").unwrap();
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("lock for the systemd namespace");
        let units = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-units");
        let _ = std::fs::remove_dir_all(&units);
        std::fs::create_dir_all(&units).unwrap();
        for unit in ["logger.service", "logger.socket"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("systemd")
                    .join(unit),
                units.join(unit),
            )
            .unwrap();
        }
        let unshare =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd/boot.sh"))
                .arg(BIN)
                .arg(&units)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run boot.sh");
        // The namespace's init is the child of `unshare` whose NSpid ends in 1. Before boot.sh
        // execs unshare, its own short-lived children (a `$(id -u)`) are not it.
        let is_namespace_init = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|ns| {
                        // "NSpid:\t<host pid>\t1": PID 1 of exactly one nested namespace.
                        let ids: Vec<&str> = ns.split_whitespace().collect();
                        ids.len() == 2 && ids[1] == "1"
                    })
                })
                .unwrap_or(false)
        };
        let deadline = Instant::now() + WAIT;
        let mut unshare = unshare;
        let pid = loop {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                    .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().find(|p| is_namespace_init(p)) {
                break pid.parse().unwrap();
            }
            if Instant::now() > deadline {
                // No guard exists yet to tear down: end the namespace here.
                let _ = unshare.kill();
                let _ = unshare.wait();
                panic!("the namespace's init never appeared");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let sd = Systemd {
            unshare,
            pid,
            _lock: lock,
        };
        let started = Instant::now();
        loop {
            let state = sd.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            let basic = sd.run(&["systemctl", "is-active", "basic.target"]);
            if state == "running" || state == "degraded" || basic.status.success() {
                eprintln!("systemd booted to {state} in {:?}", started.elapsed());
                break;
            }
            assert!(
                Instant::now() < deadline + BOOT_GRACE,
                "systemd did not boot: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sd
    }

    /// `timeout 60 nsenter … --`: a command inside the namespace. Bounded, so no command may
    /// hang the suite (a stuck job would otherwise wait forever).
    fn in_namespace(&self) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["60", "nsenter", "-t", &self.pid.to_string()])
            .args(["-m", "-p", "-u", "-i", "--"]);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.in_namespace()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces the test drop-in of logger.service (printf escapes allowed) and reloads systemd.
    fn drop_in(&self, text: &str) {
        self.ok(&["mkdir", "-p", DROP_IN_DIR]);
        self.ok(&[
            "sh",
            "-c",
            &format!("printf '{text}' > {DROP_IN_DIR}/e2e.conf"),
        ]);
        self.ok(&["systemctl", "daemon-reload"]);
    }

    /// Removes the test drop-in and reloads systemd.
    fn clear_drop_in(&self) {
        self.ok(&["rm", "-r", DROP_IN_DIR]);
        self.ok(&["systemctl", "daemon-reload"]);
    }

    /// Starts `sh -c SCRIPT` inside the namespace in the background (bounded by `timeout`).
    fn spawn_sh(&self, script: &str) -> std::process::Child {
        self.in_namespace()
            .args(["sh", "-c", script])
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn prop(&self, unit: &str, prop: &str) -> String {
        self.ok(&["systemctl", "show", "-P", prop, unit])
            .trim()
            .to_owned()
    }

    /// Journal entries of the logger unit as JSON lines, with a bounded wait until `pred` holds.
    fn journal_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        within(WAIT, || {
            let out = self.ok(&["journalctl", "-u", "logger", "-o", "json", "--no-pager"]);
            pred(&out)
                .then_some(out)
                .ok_or_else(|| format!("journal never showed {what}"))
        })
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        // SIGKILL of the namespace's PID 1 ends the namespace and everything in it; unshare then
        // exits. Reaped with a bound, so a teardown problem shows up instead of hanging.
        let sigkill = |pid: i32| {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        };
        sigkill(self.pid);
        let deadline = Instant::now() + WAIT;
        while self.unshare.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                eprintln!("systemd namespace did not end; killing unshare");
                sigkill(self.unshare.id() as i32);
                let _ = self.unshare.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // journald linked the host's /dev/log into its private /run: remove it if it dangles.
        let dev_log = Path::new("/dev/log");
        if dev_log.is_symlink() && !dev_log.exists() {
            let _ = std::fs::remove_file(dev_log);
        }
    }
}

/// `systemd-analyze security --threshold=20 ARGS`: logger.service's overall exposure (printed,
/// `what` saying of which configuration); fails above 2.0, the threshold.
fn exposure(sd: &Systemd, args: &[&str], what: &str) -> f64 {
    let mut command = vec!["systemd-analyze", "security", "--threshold=20"];
    command.extend_from_slice(args);
    let security = sd.run(&command);
    let text = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "exposure above 2.0: {text}");
    let score = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for logger.service: ")
                .nth(1)
        })
        .unwrap_or_else(|| panic!("no score in {text}"));
    eprintln!("exposure{what}: {score}");
    score.split_whitespace().next().unwrap().parse().unwrap()
}

fn field<'a>(entry: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":\"");
    let start = entry.find(&needle)? + needle.len();
    Some(&entry[start..start + entry[start..].find('"')?])
}

/// How many entries of a JSON-lines journal have SYSLOG_IDENTIFIER `id`.
fn entries(journal: &str, id: &str) -> usize {
    journal
        .lines()
        .filter(|l| field(l, "SYSLOG_IDENTIFIER") == Some(id))
        .count()
}

fn entry_with<'a>(journal: &'a str, key: &str, value: &str) -> Option<&'a str> {
    journal.lines().find(|l| field(l, key) == Some(value))
}

/// The one booted systemd the scenarios share: booted by the first that runs, ended by the
/// sequence's teardown (`end_systemd`) whatever ran or failed.
static SYSTEMD: std::sync::Mutex<Option<Systemd>> = std::sync::Mutex::new(None);

/// The shared systemd, booted if no scenario booted it yet (a scenario whose requirement is
/// missing is skipped here, or fails under LOGGER_TEST_STRICT=1).
fn systemd() -> SharedSystemd {
    require!(is_root(), "root, to boot systemd in a namespace");
    require!(
        Path::new("/lib/systemd/systemd").exists() && have("nsenter") && have("unshare"),
        "systemd, nsenter and unshare"
    );
    // A scenario that failed holding it poisoned the lock; the next one carries on.
    let mut guard = SYSTEMD.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(Systemd::boot());
    }
    SharedSystemd(guard)
}

/// Ends the shared namespace (the sequence's teardown).
fn end_systemd() {
    SYSTEMD.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// The shared systemd, held by one scenario at a time.
struct SharedSystemd(std::sync::MutexGuard<'static, Option<Systemd>>);

impl std::ops::Deref for SharedSystemd {
    type Target = Systemd;
    fn deref(&self) -> &Systemd {
        self.0.as_ref().expect("booted in systemd()")
    }
}

fn the_shipped_units_verify_clean_and_expose_little() {
    let sd = systemd();
    // 8. Every shipped unit verifies clean; 7. the service's exposure is at most 1.4. verify
    //    looks up the unit's Documentation=man:logger(8), which the package installs.
    let man_page = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/logger.8");
    sd.ok(&[
        "install",
        "-Dm644",
        &man_page.display().to_string(),
        "/usr/share/man/man8/logger.8",
    ]);
    for unit in ["logger.service", "logger.socket"] {
        let path = format!("/etc/systemd/system/{unit}");
        let out = sd.run(&["systemd-analyze", "verify", &path]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "verify {unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let exposure = exposure(
        &sd,
        &["--offline=true", "/etc/systemd/system/logger.service"],
        "",
    );
    assert!(exposure <= 1.4, "exposure {exposure} above 1.4");
    sd.ok(&["rm", "/usr/share/man/man8/logger.8"]);
}

fn start_returns_once_ready_and_shows_the_status() {
    let sd = systemd();
    // 1. start returns only after READY: it is active at once and STATUS= is shown.
    let started = Instant::now();
    sd.ok(&["systemctl", "start", "logger.service"]);
    eprintln!("systemctl start: {:?}", started.elapsed());
    assert_eq!(sd.prop("logger", "ActiveState"), "active");
    let status = sd.prop("logger", "StatusText");
    assert!(
        status.contains("udp://127.0.0.1:5514") && status.contains("unix:///run/logger/log"),
        "{status}"
    );
    assert!(
        sd.ok(&["systemctl", "status", "--no-pager", "logger"])
            .contains("Status: \"Listening on")
    );
}

fn journalctl_shows_our_lines_and_relayed_messages_with_their_fields() {
    let sd = systemd();
    // Runs on its own too: the service up with the shipped units.
    sd.ok(&["systemctl", "start", "logger.service"]);

    // 2. journalctl -u shows our own lines with priorities, and relayed messages with the
    //    sender's identifier, pid, priority and our origin fields.
    sd.ok(&[
        "/usr/bin/logger",
        "-u",
        "/run/logger/log",
        "-t",
        "e2e-unix",
        "-p",
        "local3.warning",
        "--id=4242",
        "via unix",
    ]);
    sd.ok(&[
        "/usr/bin/logger",
        "-n",
        "127.0.0.1",
        "-P",
        "5514",
        "-d",
        "-t",
        "e2e-udp",
        "-p",
        "daemon.err",
        "via udp",
    ]);
    sd.ok(&[
        "/usr/bin/logger",
        "-n",
        "127.0.0.1",
        "-P",
        "5514",
        "-T",
        "--octet-count",
        "-t",
        "e2e-tcp",
        "--msgid",
        "M1",
        "via tcp",
    ]);
    let journal = sd.journal_until("the three relayed messages", |j| {
        ["e2e-unix", "e2e-udp", "e2e-tcp"]
            .iter()
            .all(|id| entry_with(j, "SYSLOG_IDENTIFIER", id).is_some())
    });
    let own = journal
        .lines()
        .find(|l| {
            field(l, "SYSLOG_IDENTIFIER") == Some("logger")
                && field(l, "MESSAGE").is_some_and(|m| m.starts_with("listening on"))
        })
        .expect("our own start-up line");
    // systemd-journal-logger maps log::Level::Info to notice (5).
    assert_eq!(field(own, "PRIORITY"), Some("5"));
    let unix = entry_with(&journal, "SYSLOG_IDENTIFIER", "e2e-unix").unwrap();
    assert_eq!(field(unix, "MESSAGE"), Some("via unix"));
    assert_eq!(field(unix, "PRIORITY"), Some("4"));
    assert_eq!(field(unix, "SYSLOG_FACILITY"), Some("19"));
    assert_eq!(field(unix, "SYSLOG_PID"), Some("4242"));
    assert_eq!(field(unix, "LOGGER_TRANSPORT"), Some("unix"));
    assert!(field(unix, "LOGGER_PEER_PID").is_some());
    let udp = entry_with(&journal, "SYSLOG_IDENTIFIER", "e2e-udp").unwrap();
    assert_eq!(field(udp, "PRIORITY"), Some("3"));
    assert_eq!(field(udp, "LOGGER_TRANSPORT"), Some("udp"));
    assert!(field(udp, "LOGGER_PEER").unwrap().starts_with("127.0.0.1:"));
    let tcp = entry_with(&journal, "SYSLOG_IDENTIFIER", "e2e-tcp").unwrap();
    assert_eq!(field(tcp, "LOGGER_MSGID"), Some("M1"));
    assert_eq!(field(tcp, "LOGGER_TRANSPORT"), Some("tcp"));

    // Hostile content: an emergency from the network with terminal escapes reaches journald
    // escaped, so journalctl shows it as text (not "[blob data]") and ForwardToWall would
    // print no escape sequence.
    sd.ok(&[
        "bash",
        "-c",
        "printf '<0>e2e-hostile: \\033[2J\\033]0;owned\\007 wiped\\rfake' > /dev/udp/127.0.0.1/5514",
    ]);
    let journal = sd.journal_until("the hostile message", |j| {
        entry_with(j, "SYSLOG_IDENTIFIER", "e2e-hostile").is_some()
    });
    let hostile = entry_with(&journal, "SYSLOG_IDENTIFIER", "e2e-hostile").unwrap();
    assert_eq!(
        field(hostile, "MESSAGE"),
        Some("\\\\x1b[2J\\\\x1b]0;owned\\\\x07 wiped\\\\rfake"),
        "MESSAGE must be a JSON string of escapes: {hostile}"
    );
    assert_eq!(field(hostile, "LOGGER_ESCAPED"), Some("1"));
    let shown = sd.run(&[
        "journalctl",
        "-u",
        "logger",
        "--no-pager",
        "SYSLOG_IDENTIFIER=e2e-hostile",
    ]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("x1b[2J") && !shown.contains("blob data") && !shown.contains('\x1b'),
        "journalctl shows: {shown}"
    );
}

fn a_reload_is_visible_and_a_refused_one_fails_systemctl_reload() {
    let sd = systemd();
    // Runs on its own too: the service up with the shipped units.
    sd.ok(&["systemctl", "start", "logger.service"]);

    // 3. reload: visible, a changed config takes effect, an invalid one keeps the old.
    sd.ok(&["mkdir", "-p", "/run/logger-e2e"]);
    let write_config = |text: &str| {
        sd.ok(&[
            "sh",
            "-c",
            &format!(
                "mkdir -p /etc/logger-e2e && printf '%s' '{text}' > /run/logger-e2e/logger.toml"
            ),
        ]);
    };
    write_config("heartbeat = \"0\"\n");
    sd.drop_in("[Service]\\nExecStart=\\nExecStart=/usr/sbin/logger --config /run/logger-e2e/logger.toml\\n");
    sd.ok(&["systemctl", "restart", "logger.service"]);
    write_config("listen = [\"udp://127.0.0.1:5515\"]\n");
    sd.ok(&["systemctl", "reload", "logger.service"]);
    assert!(
        sd.prop("logger", "StatusText")
            .contains("udp://127.0.0.1:5515")
    );
    // A refused reload fails `systemctl reload` itself (ExecReload is `logger --reload`),
    // and the running configuration keeps serving.
    write_config("listen = [\"udp://nonsense\"]\n");
    let refused = sd.run(&["systemctl", "reload", "logger.service"]);
    assert!(
        !refused.status.success(),
        "systemctl reload succeeded with a broken file"
    );
    assert_eq!(sd.prop("logger", "ActiveState"), "active");
    sd.journal_until(
        "the reason of the refused reload from logger --reload",
        |j| j.contains("reload refused, the running configuration is kept"),
    );
    // logger --status run by the operator says so too.
    let status = sd.ok(&[
        "/usr/sbin/logger",
        "--config",
        "/run/logger-e2e/logger.toml",
        "--status",
    ]);
    assert!(
        status.contains("REFUSED") && status.contains("udp://127.0.0.1:5515"),
        "{status}"
    );
    assert!(
        sd.prop("logger", "StatusText")
            .contains("udp://127.0.0.1:5515")
    );
    sd.journal_until("the refused reload", |j| {
        j.contains("reload failed, keeping the running configuration")
    });
    sd.ok(&[
        "/usr/bin/logger",
        "-n",
        "127.0.0.1",
        "-P",
        "5515",
        "-d",
        "-t",
        "e2e-reload",
        "after reloads",
    ]);
    sd.journal_until("a message after the reloads", |j| {
        j.contains("after reloads")
    });
    sd.clear_drop_in();
    let t = Instant::now();
    sd.ok(&["systemctl", "restart", "logger.service"]);
    eprintln!("systemctl restart: {:?}", t.elapsed());
}

fn a_stop_is_clean_quick_and_loses_nothing() {
    let sd = systemd();
    // Runs on its own too: the service up with the shipped units.
    sd.ok(&["systemctl", "start", "logger.service"]);

    // 5. stop is clean, quick, and loses nothing it had accepted.
    let burst = "for i in $(seq 1 500); do printf '<13>e2e-stop: n%s\\n' $i; done | /usr/bin/logger -n 127.0.0.1 -P 5514 -T -t e2e-stop";
    sd.ok(&["sh", "-c", burst]);
    let t = Instant::now();
    sd.ok(&["systemctl", "stop", "logger.service"]);
    let stop = t.elapsed();
    eprintln!("systemctl stop: {stop:?}");
    assert!(stop < Duration::from_secs(1), "stop took {stop:?}");
    assert_eq!(sd.prop("logger", "Result"), "success");
    let journal = sd.ok(&[
        "journalctl",
        "-u",
        "logger",
        "-o",
        "cat",
        "--no-pager",
        "SYSLOG_IDENTIFIER=e2e-stop",
    ]);
    for i in 1..=500 {
        assert!(journal.contains(&format!("n{i}\n")), "n{i} lost at stop");
    }
    // The stop summary: a short MESSAGE, every counter a field of its own.
    let summary = sd.journal_until("the stop summary with its fields", |j| {
        j.lines().any(|l| l.contains("\"LOGGER_RECEIVED\""))
    });
    let entry = summary
        .lines()
        .rfind(|l| l.contains("\"LOGGER_RECEIVED\""))
        .unwrap();
    let received: u64 = field(entry, "LOGGER_RECEIVED").unwrap().parse().unwrap();
    assert!(received >= 500, "{entry}");
    assert!(field(entry, "MESSAGE").unwrap().len() < 120, "{entry}");
}

fn the_watchdog_kills_a_frozen_loop_and_systemd_restarts_it() {
    let sd = systemd();
    // Runs on its own too: from a stopped service.
    sd.ok(&["systemctl", "stop", "logger.service"]);

    // 4. watchdog: a frozen main loop is killed, recorded, restarted, and serves again.
    sd.drop_in(
        "[Unit]\\nStartLimitIntervalSec=0\\n[Service]\\nWatchdogSec=1s\\nRestartSec=100ms\\n",
    );
    sd.ok(&["systemctl", "start", "logger.service"]);
    let first = sd.prop("logger", "MainPID");
    sd.ok(&["kill", "-STOP", &first]);
    eventually("restarted after the watchdog", WAIT, || {
        let pid = sd.prop("logger", "MainPID");
        pid != first && pid != "0" && sd.prop("logger", "ActiveState") == "active"
    });
    let journal = sd.ok(&["journalctl", "-u", "logger", "--no-pager", "-o", "cat"]);
    assert!(
        journal.contains("Watchdog timeout"),
        "no watchdog kill recorded"
    );
    assert!(sd.prop("logger", "NRestarts").parse::<u32>().unwrap() >= 1);
    sd.ok(&[
        "/usr/bin/logger",
        "-u",
        "/run/logger/log",
        "-t",
        "e2e-wd",
        "after watchdog",
    ]);
    sd.journal_until("a message after the watchdog restart", |j| {
        j.contains("after watchdog")
    });
    sd.clear_drop_in();
    sd.ok(&["systemctl", "stop", "logger.service"]);
}

fn socket_activation_restarts_under_load_lose_nothing() {
    let sd = systemd();
    // Runs on its own too: from a stopped service.
    sd.ok(&["systemctl", "stop", "logger.service"]);

    // 6. socket activation: restarts under a steady load lose nothing sent to the local socket
    //    or UDP; the kernel queues into the sockets systemd holds.
    let cursor = sd.ok(&["journalctl", "-n", "0", "--show-cursor", "--no-pager"]);
    let cursor = cursor
        .lines()
        .find_map(|l| l.strip_prefix("-- cursor: "))
        .expect("a journal cursor")
        .to_owned();
    sd.ok(&["systemctl", "start", "logger.socket"]);
    sd.ok(&["systemctl", "start", "logger.service"]);
    assert!(
        sd.prop("logger", "StatusText")
            .contains("unix:///run/logger/log")
    );
    // A clean start says nothing at warning level or above (systemd warned twice about
    // SO_PASSCRED on the network sockets when the socket unit asked for PassCredentials=).
    let warnings = sd.ok(&[
        "journalctl",
        "--no-pager",
        "-q",
        "-p",
        "warning",
        &format!("--after-cursor={cursor}"),
        "-u",
        "logger.socket",
        "-u",
        "logger.service",
    ]);
    assert!(warnings.trim().is_empty(), "warnings at start: {warnings}");
    // Credentials still come with local messages: logger turns them on itself.
    sd.ok(&[
        "/usr/bin/logger",
        "-u",
        "/run/logger/log",
        "-t",
        "e2e-cred",
        "creds",
    ]);
    let journal = sd.journal_until("a local message with credentials", |j| {
        entry_with(j, "SYSLOG_IDENTIFIER", "e2e-cred").is_some()
    });
    let cred = entry_with(&journal, "SYSLOG_IDENTIFIER", "e2e-cred").unwrap();
    assert!(field(cred, "LOGGER_PEER_PID").is_some(), "{cred}");
    let load = "for i in $(seq 1 300); do /usr/bin/logger -u /run/logger/log -t e2e-act u$i; /usr/bin/logger -n 127.0.0.1 -P 5514 -d -t e2e-act d$i; /usr/bin/logger -n 127.0.0.1 -P 5514 -T -t e2e-act t$i; done";
    let mut sender = sd.spawn_sh(load);
    for _ in 0..3 {
        sd.ok(&["systemctl", "restart", "logger.service"]);
    }
    // A TCP client may see its connection reset by a restart (logger(1) then says so); that
    // is reported below, not a failure of the load.
    let _ = sender.wait();
    let lines_with = |sd: &Systemd, prefix: char| {
        sd.ok(&[
            "journalctl",
            "-u",
            "logger",
            "-o",
            "cat",
            "--no-pager",
            "SYSLOG_IDENTIFIER=e2e-act",
        ])
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    within(WAIT, || {
        match lines_with(&sd, 'u').len() + lines_with(&sd, 'd').len() {
            600.. => Ok(()),
            n => Err(format!("{n} of 600 unix and udp lines across restarts")),
        }
    });
    let (unix, udp, tcp) = (
        lines_with(&sd, 'u'),
        lines_with(&sd, 'd'),
        lines_with(&sd, 't'),
    );
    for i in 1..=300 {
        assert!(
            unix.contains(&format!("u{i}")),
            "unix u{i} lost across restarts"
        );
        assert!(
            udp.contains(&format!("d{i}")),
            "udp d{i} lost across restarts"
        );
    }
    eprintln!(
        "socket activation, 3 restarts: unix 300/300, udp 300/300, tcp {}/300 (one connection per message)",
        tcp.len()
    );
    assert!(
        tcp.len() >= 297,
        "TCP lost more than 1% across restarts: {}",
        tcp.len()
    );
}

fn journald_restarts_under_load_lose_nothing() {
    let sd = systemd();
    // Runs on its own too: the sockets held by systemd and the service up.
    sd.ok(&["systemctl", "start", "logger.socket"]);
    sd.ok(&["systemctl", "start", "logger.service"]);

    // Faults. journald restarts under a steady load: nothing accepted is lost.
    let load = "seq 1 3000 | sed 's/^/j/' | /usr/bin/logger -u /run/logger/log -t e2e-jr";
    let mut sender = sd.spawn_sh(load);
    for _ in 0..2 {
        sd.ok(&["systemctl", "restart", "systemd-journald.service"]);
    }
    assert!(sender.wait().unwrap().success());
    let journal = sd.journal_until("all 3000 messages across journald restarts", |j| {
        entries(j, "e2e-jr") >= 3000
    });
    assert_eq!(sd.prop("logger", "ActiveState"), "active");
    eprintln!(
        "fault: journald restarted twice | load: 3000 unix | sent 3000 | written {} | lost 0",
        entries(&journal, "e2e-jr")
    );
}

fn a_sigkill_under_socket_activation_loses_nothing_queued() {
    let sd = systemd();
    // Runs on its own too: the sockets held by systemd and the service up.
    sd.ok(&["systemctl", "start", "logger.socket"]);
    sd.ok(&["systemctl", "start", "logger.service"]);

    // SIGKILL under socket activation: what the kernel queued while the service was dead is
    // delivered after the restart.
    sd.drop_in("[Unit]\\nStartLimitIntervalSec=0\\n[Service]\\nRestartSec=1s\\n");
    sd.ok(&["systemctl", "kill", "-s", "KILL", "logger.service"]);
    let queued = "for i in $(seq 1 100); do /usr/bin/logger -u /run/logger/log -t e2e-kill k$i; /usr/bin/logger -n 127.0.0.1 -P 5514 -d -t e2e-kill q$i; done";
    sd.ok(&["sh", "-c", queued]);
    let journal = sd.journal_until("the 200 messages queued while the service was dead", |j| {
        entries(j, "e2e-kill") >= 200
    });
    assert!(sd.prop("logger", "NRestarts").parse::<u32>().unwrap() >= 1);
    eprintln!(
        "fault: SIGKILL under socket activation | load: 100 unix + 100 udp while dead | sent 200 | written {} | lost 0",
        entries(&journal, "e2e-kill")
    );
}

fn the_debian_package_installs_upgrades_and_purges() {
    let sd = systemd();
    debian_package(&sd);
}

/// The packaged switch to the system logger (README: "Running as the system logger"): Debian's
/// rules, the unit drop-in and the logrotate snippet from /usr/share/doc/logger/examples. The
/// files are written root:adm 0640 as rsyslog writes them, the unit's exposure stays at most
/// 2.0, and a rotation by the shipped snippet makes logger write the next line to a new file.
fn system_logger(sd: &Systemd) {
    let examples = "/usr/share/doc/logger/examples";
    sd.ok(&[
        "cp",
        &format!("{examples}/debian-rules.toml"),
        "/etc/logger/logger.toml",
    ]);
    sd.ok(&["mkdir", "-p", "/etc/systemd/system/logger.service.d"]);
    sd.ok(&[
        "cp",
        &format!("{examples}/system-logger.conf"),
        "/etc/systemd/system/logger.service.d/",
    ]);
    sd.ok(&[
        "cp",
        &format!("{examples}/logrotate"),
        "/etc/logrotate.d/logger",
    ]);
    sd.ok(&["systemctl", "daemon-reload"]);
    sd.ok(&["systemctl", "restart", "logger.service"]);
    assert_eq!(sd.prop("logger.service", "ActiveState"), "active");

    let exposure = exposure(sd, &["logger.service"], " as the system logger");
    assert!(exposure <= 2.0, "exposure {exposure} above 2.0");

    let send = |text: &str| {
        sd.ok(&[
            "/usr/bin/logger",
            "-u",
            "/run/logger/log",
            "-p",
            "authpriv.info",
            "-t",
            "sshd",
            "--id=2222",
            text,
        ]);
    };
    let wait_for = |path: &str, text: &str| {
        eventually(&format!("{text:?} in {path}"), WAIT, || {
            String::from_utf8_lossy(&sd.run(&["cat", path]).stdout).contains(text)
        })
    };
    send("Failed password for root from 203.0.113.1 port 22 ssh2");
    wait_for(
        "/var/log/auth.log",
        "Failed password for root from 203.0.113.1",
    );
    assert_eq!(
        sd.ok(&["stat", "-c", "%U:%G %a", "/var/log/auth.log"])
            .trim(),
        "root:adm 640",
        "auth.log as rsyslog writes it"
    );
    let line = sd.ok(&["cat", "/var/log/auth.log"]);
    assert!(
        line.contains(" sshd[2222]: Failed password") && !line.contains("authpriv.info"),
        "rsyslog's line: {line}"
    );

    sd.ok(&["logrotate", "--force", "/etc/logrotate.d/logger"]);
    // The snippet creates no file: logger's reopen at the signal does.
    eventually("auth.log reopened after rotation", WAIT, || {
        sd.run(&["test", "-e", "/var/log/auth.log"])
            .status
            .success()
    });
    send("Failed password for admin from 203.0.113.2 port 22 ssh2");
    wait_for(
        "/var/log/auth.log",
        "Failed password for admin from 203.0.113.2",
    );
    let rotated = sd.ok(&["cat", "/var/log/auth.log.1"]);
    assert!(
        rotated.contains("203.0.113.1") && !rotated.contains("203.0.113.2"),
        "{rotated}"
    );
    assert_eq!(
        sd.ok(&["stat", "-c", "%U:%G %a", "/var/log/auth.log"])
            .trim(),
        "root:adm 640"
    );
    // Back to the package's own configuration and unit for the purge.
    sd.ok(&[
        "rm",
        "-rf",
        "/etc/systemd/system/logger.service.d",
        "/etc/logrotate.d/logger",
    ]);
    sd.ok(&["systemctl", "daemon-reload"]);
}

/// The package `cargo deb` builds at revision 1 into target/deb, and at revision 2 (the
/// upgrade) into target/deb-upgrade (cargo-deb empties its own target/debian at each run).
fn package(revision: u32) -> std::path::PathBuf {
    let arch = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let dir = if revision == 1 { "deb" } else { "deb-upgrade" };
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/{dir}/logger_{}-{revision}_{arch}.deb",
        env!("CARGO_PKG_VERSION")
    ))
}

/// Installing, upgrading and purging the Debian package, as an operator does. The namespace's
/// /usr, /etc and /var are overlays: nothing dpkg writes reaches the host.
fn debian_package(sd: &Systemd) {
    let (first, second) = (package(1), package(2));
    require!(
        first.exists() && second.exists(),
        format!(
            "{} and {} (`cargo deb -o target/deb/`, then `cargo deb --no-build \
             --deb-revision 2 -o target/deb-upgrade/`; bash .ci/run builds them)",
            first.display(),
            second.display()
        )
    );
    // The units the scenarios above used give way to the package's own.
    sd.ok(&["systemctl", "stop", "logger.service", "logger.socket"]);
    sd.ok(&["rm", "-rf", DROP_IN_DIR]);
    sd.ok(&[
        "rm",
        "-f",
        "/etc/systemd/system/logger.service",
        "/etc/systemd/system/logger.socket",
    ]);
    sd.ok(&["systemctl", "daemon-reload"]);
    let debian_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    // Install: the service runs at once, from the package's units and binary.
    sd.ok(&["dpkg", "-i", &first.display().to_string()]);
    for unit in ["logger.service", "logger.socket"] {
        assert_eq!(sd.ok(&["systemctl", "is-enabled", unit]).trim(), "enabled");
        let state = sd.prop(unit, "ActiveState");
        assert_eq!(
            state,
            "active",
            "{unit}: {}",
            String::from_utf8_lossy(
                &sd.run(&["systemctl", "status", "--no-pager", "-n", "20", unit])
                    .stdout
            )
        );
    }
    // /lib is /usr/lib on Debian 12 (merged /usr); systemd may name either.
    let fragment = sd.prop("logger.service", "FragmentPath");
    assert!(
        fragment.ends_with("lib/systemd/system/logger.service") && !fragment.starts_with("/etc"),
        "{fragment}"
    );
    for file in [
        "/usr/sbin/logger",
        "/etc/logger/logger.toml",
        "/usr/share/man/man8/logger.8.gz",
        "/usr/share/man/man5/logger.toml.5.gz",
        "/usr/share/doc/logger/README.md",
        "/usr/share/doc/logger/copyright",
        "/usr/share/doc/logger/changelog.Debian.gz",
    ] {
        sd.ok(&["test", "-f", file]);
    }
    assert!(
        sd.ok(&["man", "-w", "8", "logger"])
            .contains("man8/logger.8")
    );
    sd.ok(&[
        "/usr/bin/logger",
        "-u",
        "/run/logger/log",
        "-t",
        "e2e-deb",
        "installed",
    ]);
    sd.journal_until("a message through the installed package", |j| {
        entry_with(j, "SYSLOG_IDENTIFIER", "e2e-deb").is_some()
    });
    // The client that scripts use still works by its bare name, through the daemon's binary.
    sd.ok(&[
        "env",
        debian_path,
        "logger",
        "-u",
        "/run/logger/log",
        "-t",
        "e2e-deb-client",
        "by name",
    ]);
    sd.journal_until("a message sent with `logger` by name", |j| {
        entry_with(j, "SYSLOG_IDENTIFIER", "e2e-deb-client").is_some()
    });

    // Upgrade with an edited conffile: the edit is kept and the new daemon reads it.
    sd.ok(&[
        "sed",
        "-i",
        "s/^#heartbeat = \"300s\"/heartbeat = \"1h\"/",
        "/etc/logger/logger.toml",
    ]);
    let before = sd.prop("logger.service", "MainPID");
    sd.ok(&["dpkg", "-i", &second.display().to_string()]);
    assert_eq!(
        sd.ok(&["dpkg-query", "-W", "-f=${Version}", "logger"]),
        format!("{}-2", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(sd.prop("logger.service", "ActiveState"), "active");
    let after = sd.prop("logger.service", "MainPID");
    assert_ne!(before, after, "the upgrade did not restart the service");
    assert!(
        sd.ok(&["cat", "/etc/logger/logger.toml"])
            .contains("\nheartbeat = \"1h\"")
    );
    assert!(
        sd.ok(&["env", debian_path, "logger", "--check-config"])
            .contains("heartbeat = \"3600s\"")
    );
    sd.ok(&[
        "/usr/bin/logger",
        "-u",
        "/run/logger/log",
        "-t",
        "e2e-upgraded",
        "upgraded",
    ]);
    sd.journal_until("a message after the upgrade", |j| {
        entry_with(j, "SYSLOG_IDENTIFIER", "e2e-upgraded").is_some()
    });

    system_logger(sd);

    // Purge: stopped, and nothing of it left, util-linux's client untouched.
    sd.ok(&["dpkg", "--purge", "logger"]);
    assert_ne!(sd.prop("logger.service", "ActiveState"), "active");
    for gone in [
        "/usr/sbin/logger",
        "/etc/logger",
        "/usr/lib/systemd/system/logger.service",
        "/usr/lib/systemd/system/logger.socket",
    ] {
        assert!(
            !sd.run(&["test", "-e", gone]).status.success(),
            "{gone} left"
        );
    }
    sd.ok(&[
        "env",
        debian_path,
        "logger",
        "-t",
        "e2e-purged",
        "client still works",
    ]);
    sd.ok(&["/usr/bin/logger", "--version"]);
}
