//! The kernel log input against the real kernel: numbered records written to /dev/kmsg are
//! read once across a SIGKILL, a clean stop and restart, and a ring buffer that overran while
//! logger was stopped is reported with the exact number missed; into a disk-queued RELP output
//! that keeps the position with its records, a kill reads nothing twice.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    the_kernel_log_is_read_once_across_kills_stops_and_overruns,
    a_disk_queued_forward_output_keeps_the_kernel_log_position_so_a_kill_reads_nothing_twice,
];

const DEVKMSG: &str = "/proc/sys/kernel/printk_devkmsg";

/// The ring is one for the whole machine: one test at a time writes to it (the overrun the
/// first test causes would make the other one miss records).
static RING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_ring() -> std::sync::MutexGuard<'static, ()> {
    RING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets writers past the kernel's rate limit (10 lines) for the test; restores the setting.
struct Unlimited(String);

impl Unlimited {
    fn new() -> Unlimited {
        let old = std::fs::read_to_string(DEVKMSG).unwrap().trim().to_owned();
        std::fs::write(DEVKMSG, "on\n").unwrap();
        Unlimited(old)
    }
}

impl Drop for Unlimited {
    fn drop(&mut self) {
        let _ = std::fs::write(DEVKMSG, format!("{}\n", self.0));
    }
}

/// Writes records `from..to` tagged with `marker` to /dev/kmsg (facility user, as a program
/// writes them).
fn write_records(marker: &str, from: usize, to: usize) {
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap();
    for i in from..to {
        kmsg.write_all(format!("<14>kmsgtest: {marker} n{i}\n").as_bytes())
            .unwrap();
    }
}

/// How often each numbered entry of `marker` is in the file.
fn counts(path: &Path, marker: &str) -> BTreeMap<usize, usize> {
    numbered(path, &format!("{marker} n"))
}

fn wait_for_all(path: &Path, marker: &str, n: usize) -> BTreeMap<usize, usize> {
    wait_for_numbered(path, &format!("{marker} n"), n)
}

/// The sequence number of the oldest record the ring holds now.
fn oldest_seq() -> u64 {
    let mut kmsg = std::fs::File::open("/dev/kmsg").unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let n = kmsg.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(',').nth(1).unwrap().parse().unwrap()
}

fn saved_seq(state: &Path) -> u64 {
    let text = std::fs::read_to_string(state.join("kmsg.position")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("seq="))
        .unwrap()
        .parse()
        .unwrap()
}

fn the_kernel_log_is_read_once_across_kills_stops_and_overruns() {
    require!(is_root(), "root (/dev/kmsg)");
    require!(
        Path::new(DEVKMSG).exists() && Path::new("/dev/kmsg").exists(),
        "/dev/kmsg and printk_devkmsg"
    );
    let _ring = take_ring();
    let _unlimited = Unlimited::new();
    let work = tempdir();
    let (state, log) = (work.path().join("state"), work.path().join("kernel.log"));
    let marker = format!("m{}x{}", std::process::id(), oldest_seq());
    let config = format!(
        "state-dir = \"{}\"\nstop-timeout = \"5s\"\nrate-limit = 10\nrate-limit-burst = 10\n\
         [[input]]\nread = \"kmsg\"\n\
         [[output]]\nto = \"file:{}\"\nformat = \"json\"\n",
        state.display(),
        log.display()
    );
    let start = || Builder::new().config(&config).start();

    // Running: every record once, with the kernel's fields.
    let d = start();
    write_records(&marker, 0, 500);
    let seen = wait_for_all(&log, &marker, 500);
    assert!(seen.values().all(|&c| c == 1), "duplicates while running");
    // Each record with its priority, tag, the kernel's time and its sequence number.
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("{marker} n0\"")))
        .unwrap();
    for part in [
        "\"appname\":\"kmsgtest\"",
        "\"facility\":{\"code\":1,\"name\":\"user\"},\"severity\":{\"code\":6",
        "\"journal\":{\"KERNEL_SEQNUM\":\"",
        "\"KERNEL_MONOTONIC_USEC\":\"",
        "\"transport\":\"kmsg\"",
    ] {
        assert!(line.contains(part), "{part} not in {line}");
    }

    // SIGKILL mid-stream, then a restart: nothing missing, few duplicates.
    let writer = {
        let marker = marker.clone();
        std::thread::spawn(move || write_records(&marker, 500, 3000))
    };
    std::thread::sleep(Duration::from_millis(20));
    let mut d = d;
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = d.wait_exit(WAIT);
    writer.join().unwrap();
    let d = start();
    let seen = wait_for_all(&log, &marker, 3000);
    let duplicated: usize = seen.values().map(|c| c - 1).sum();
    eprintln!("kmsg: SIGKILL mid-stream: 0 missing of 3000, {duplicated} duplicated");
    assert!(
        duplicated <= 2048,
        "{duplicated} duplicated after one SIGKILL"
    );

    // A clean stop and restart: not one duplicate.
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let before = counts(&log, &marker);
    write_records(&marker, 3000, 3100);
    let d = start();
    let seen = wait_for_all(&log, &marker, 3100);
    for i in 0..3100 {
        let was = before.get(&i).copied().unwrap_or(0);
        let expected = if i < 3000 { was } else { 1 };
        assert_eq!(seen[&i], expected, "n{i} read again after a clean stop");
    }

    // Stopped while far more is written than the ring holds: the gap is said, exactly.
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let saved = saved_seq(&state);
    write_records(&marker, 3100, 40_000);
    let before = std::fs::metadata(&log).unwrap().len() as usize;
    let d = start();
    eventually("the last record after the overrun", WAIT, || {
        counts(&log, &marker).contains_key(&39_999)
    });
    // The first record read after the restart is the oldest the ring still held then (the
    // kernel may have logged more meanwhile): the gap is counted from it.
    let after = std::fs::read_to_string(&log).unwrap()[before..].to_owned();
    let first: u64 = after
        .split("\"KERNEL_SEQNUM\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("a record after the restart");
    assert!(
        first > saved + 1,
        "the ring did not overrun ({first} after {saved})"
    );
    let missed = first - saved - 1;
    let json = d.status_json();
    assert_eq!(
        json_number(&json, "\"listen\":\"kmsg:///dev/kmsg\"", "missed"),
        Some(missed),
        "{json}"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("missed {missed} kernel messages")),
        "{stderr}"
    );
    eprintln!("kmsg: overrun while stopped: missed {missed}, said and counted exactly");
}

/// As the journal's test of the same name: the input's own position can never be saved (its
/// state-dir lies under a regular file), so only the disk queue's copy of it keeps a restart
/// from reading the ring again.
fn a_disk_queued_forward_output_keeps_the_kernel_log_position_so_a_kill_reads_nothing_twice() {
    require!(is_root(), "root (/dev/kmsg)");
    require!(
        Path::new(DEVKMSG).exists() && Path::new("/dev/kmsg").exists(),
        "/dev/kmsg and printk_devkmsg"
    );
    let _ring = take_ring();
    let _unlimited = Unlimited::new();
    let work = tempdir();
    std::fs::write(work.path().join("not-a-dir"), "").unwrap();
    let out = work.path().join("collected.json");
    let port = free_port();
    let marker = format!("k{}x{}", std::process::id(), oldest_seq());
    let config = format!(
        "heartbeat = \"0\"\nstate-dir = \"{}\"\n[[input]]\nread = \"kmsg\"\n\
         [[output]]\nto = \"relp://127.0.0.1:{port}\"\nqueue-dir = \"{}\"\n",
        work.path().join("not-a-dir").join("state").display(),
        work.path().join("queue").display()
    );
    let start = || Builder::new().config(&config).start();
    disk_queued_reader_is_killed_twice(port, &out, &format!("{marker} n"), &start, &|from, to| {
        write_records(&marker, from, to)
    });
    eprintln!(
        "kmsg into a disk queue, its position never saved by the input: 0 of 700 read twice \
         across two SIGKILLs"
    );
}
