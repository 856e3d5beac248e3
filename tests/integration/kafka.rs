//! The Kafka output against a real broker (tansu, an Apache Kafka-compatible broker, from
//! `../shared/tools` or `cargo install`; `.ci/run` provides it), read back with an independent
//! client (Debian's python3-kafka): numbered messages into a three-partition topic, every one
//! there once, keyed by host and in order within its partition; the broker SIGKILLed and
//! restarted mid-stream (its memory store loses what it held: counted, not charged to logger);
//! logger SIGKILLed with `queue-dir`: nothing missing, duplicates bounded.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    numbered_messages_reach_the_topic_once_each_keyed_and_in_order,
    a_broker_restart_and_a_logger_kill_lose_nothing_logger_held,
    kafka_tls_with_snappy_reaches_the_broker_and_a_broker_no_ca_of_ours_signed_gets_nothing,
];

/// Where tansu is: `LOGGER_TANSU`, `../shared/tools/tansu`, /usr/local/bin or ~/.cargo/bin.
fn tansu() -> Option<PathBuf> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/tansu");
    std::env::var_os("LOGGER_TANSU")
        .map(PathBuf::from)
        .into_iter()
        .chain([shared, PathBuf::from("/usr/local/bin/tansu")])
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu")))
        .find(|p| p.exists())
}

/// A tansu broker with a memory store on `port`, and the topic `logs` of three partitions.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(port: u16) -> Broker {
        Broker::start_advertising(port, port)
    }

    /// A broker on `port` whose metadata sends clients to `advertised` (a TLS proxy's).
    fn start_advertising(port: u16, advertised: u16) -> Broker {
        let bin = tansu().expect("tansu");
        let url = format!("tcp://127.0.0.1:{port}");
        let shown = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &shown,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        eventually("tansu listening", WAIT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let out = Command::new(&bin)
            .args([
                "topic",
                "create",
                "logs",
                "--partitions",
                "3",
                "--broker",
                &url,
            ])
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Broker { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every record of the topic, read with python3-kafka: (partition, offset, key, value).
fn records(port: u16) -> Vec<(i32, i64, String, String)> {
    records_with(port, "")
}

/// The same, with more of KafkaConsumer's arguments (TLS).
fn records_with(port: u16, more: &str) -> Vec<(i32, i64, String, String)> {
    let script = format!(
        "from kafka import KafkaConsumer, TopicPartition\n\
         c = KafkaConsumer(bootstrap_servers='127.0.0.1:{port}', enable_auto_commit=False, \
         group_id=None, api_version=(2, 0, 0), consumer_timeout_ms=3000{more})\n\
         tps = [TopicPartition('logs', p) for p in sorted(c.partitions_for_topic('logs') or [])]\n\
         c.assign(tps)\nc.seek_to_beginning()\n\
         for m in c:\n    print(m.partition, m.offset, (m.key or b'-').decode(), m.value.decode(errors='replace'))\n"
    );
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .expect("python3-kafka");
    assert!(
        out.status.success(),
        "reading the topic: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, ' ');
            Some((
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
            ))
        })
        .collect()
}

/// How often each numbered message (`"message":"n123"`) is in the topic.
fn counts(records: &[(i32, i64, String, String)]) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for (_, _, _, value) in records {
        if let Some(n) = value
            .split("\"message\":\"n")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
        {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

fn send(d: &Daemon, range: std::ops::Range<usize>, host: &str) {
    let mut buf = Vec::new();
    for i in range {
        let m = format!(
            "<14>1 2026-12-07T15:37:24.{:06}Z {host} app - - - n{i}",
            i % 1_000_000
        );
        write!(buf, "{} {m}", m.len()).unwrap();
    }
    std::net::TcpStream::connect(d.addr("tcp"))
        .unwrap()
        .write_all(&buf)
        .unwrap();
}

fn config(port: u16, queue: Option<&Path>) -> String {
    let mut c = format!(
        "heartbeat = \"0\"\nrate-limit = 0\nlisten = [\"tcp://127.0.0.1:0\"]\n\
         [[output]]\nto = \"kafka://127.0.0.1:{port}/logs\"\nkafka-key = \"hostname\"\n"
    );
    if let Some(q) = queue {
        c.push_str(&format!("queue-dir = \"{}\"\n", q.display()));
    }
    c
}

fn kafka_test_tools() -> bool {
    tansu().is_some() && Path::new("/usr/lib/python3/dist-packages/kafka").exists()
}

fn numbered_messages_reach_the_topic_once_each_keyed_and_in_order() {
    require!(
        kafka_test_tools(),
        "tansu and python3-kafka (the broker and the reader)"
    );
    let port = free_port();
    let broker = Broker::start(port);
    let d = Builder::new().config(&config(port, None)).start();
    for (host, range) in [
        ("web1", 0..5_000),
        ("web2", 5_000..10_000),
        ("db1", 10_000..15_000),
    ] {
        send(&d, range, host);
    }
    let anchor = format!("\"output\":\"kafka://127.0.0.1:{port}/logs\"");
    d.wait_for_status_count(&anchor, "written", 15_000);
    let all = records(broker.port);
    let seen = counts(&all);
    let missing = (0..15_000).filter(|i| !seen.contains_key(i)).count();
    let twice: usize = seen.values().map(|c| c - 1).sum();
    assert_eq!((missing, twice), (0, 0), "missing, twice");
    // One host, one partition, in the order sent.
    let mut by_host: BTreeMap<&str, Vec<(i32, usize)>> = BTreeMap::new();
    for (partition, _, key, value) in &all {
        let n: usize = value
            .split("\"message\":\"n")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        by_host
            .entry(key.as_str())
            .or_default()
            .push((*partition, n));
    }
    assert_eq!(by_host.len(), 3, "{:?}", by_host.keys());
    for (host, got) in &by_host {
        assert!(
            got.iter().all(|(p, _)| *p == got[0].0),
            "{host} spread over partitions"
        );
        assert!(
            got.windows(2).all(|w| w[0].1 < w[1].1),
            "{host}'s messages out of order"
        );
    }
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

fn a_broker_restart_and_a_logger_kill_lose_nothing_logger_held() {
    require!(
        kafka_test_tools(),
        "tansu and python3-kafka (the broker and the reader)"
    );
    let work = tempdir();
    let queue = work.path().join("queue");
    let port = free_port();
    let mut broker = Broker::start(port);
    let start = || Builder::new().config(&config(port, Some(&queue))).start();

    // logger SIGKILLed with what it holds on disk, then restarted: a new producer session.
    let d = start();
    let anchor = format!("\"output\":\"kafka://127.0.0.1:{port}/logs\"");
    send(&d, 0..10_000, "web1");
    // Killed once every message is either acknowledged or on the disk queue: what a TCP
    // input had read but no output held yet is the window a SIGKILL may always take.
    eventually("all 10,000 acknowledged or on disk", WAIT, || {
        let json = d.status_json();
        let n = |key| json_number(&json, &anchor, key).unwrap_or(0);
        n("written") + n("disk_queued") == 10_000
    });
    d.signal(nix::sys::signal::Signal::SIGKILL);
    drop(d);
    let d = start();
    send(&d, 10_000..11_000, "web1");
    let seen = wait_for_topic(port, 0..11_000, &d);
    let twice_kill: usize = seen.values().map(|c| c - 1).sum();

    // The broker SIGKILLed while messages come and restarted; its memory store loses what it
    // held, so what counts is what came after.
    broker.kill();
    send(&d, 11_000..21_000, "web2");
    d.wait_for_status_count("\"totals\"", "received", 11_000);
    let _broker = Broker::start(port);
    let seen = wait_for_topic(port, 11_000..21_000, &d);
    let twice_restart: usize = seen
        .iter()
        .filter(|(n, _)| **n >= 11_000)
        .map(|(_, c)| c - 1)
        .sum();
    eprintln!(
        "kafka: 0 of 11,000 missing across a logger SIGKILL ({twice_kill} twice); 0 of 10,000 \
         missing across a broker SIGKILL and restart ({twice_restart} twice)"
    );
    assert!(twice_kill <= 10_000, "{twice_kill} twice");
    assert_eq!(
        twice_restart, 0,
        "retries across a broker restart duplicated"
    );
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

/// Waits (bounded) until every numbered message of `range` is in the topic; how often each is.
fn wait_for_topic(port: u16, range: std::ops::Range<usize>, d: &Daemon) -> BTreeMap<usize, usize> {
    let mut missing = Vec::new();
    for _ in 0..30 {
        let seen = counts(&records(port));
        missing = range.clone().filter(|i| !seen.contains_key(i)).collect();
        if missing.is_empty() {
            return seen;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    panic!(
        "{} of {range:?} missing from the topic (first {:?}); logger says {}",
        missing.len(),
        &missing[..missing.len().min(5)],
        d.status_json()
    );
}

/// `kafka+tls` with Snappy batches: tansu 0.6.0 cannot serve TLS itself (its --cert and --key
/// exclude each other), so a TLS proxy (socat, requiring a client certificate from our CA)
/// stands in front of it and the broker advertises the proxy. Read back through the proxy by
/// python3-kafka (with python3-snappy). Against a CA that did not sign the proxy's
/// certificate, logger sends nothing and says why.
fn kafka_tls_with_snappy_reaches_the_broker_and_a_broker_no_ca_of_ours_signed_gets_nothing() {
    require!(
        kafka_test_tools(),
        "tansu and python3-kafka (the broker and the reader)"
    );
    require!(
        have("socat") && have("openssl"),
        "socat (the TLS proxy) and openssl (the test PKI)"
    );
    require!(
        Path::new("/usr/lib/python3/dist-packages/snappy").exists(),
        "python3-snappy (the reader of Snappy batches)"
    );
    let work = tempdir();
    let pki = crate::tls::Pki::new(work.path());
    let other = crate::tls::Pki::new(&work.path().join("other"));
    let (port, tls_port) = (free_port(), free_port());
    let _broker = Broker::start_advertising(port, tls_port);
    let mut proxy = Command::new("socat")
        .arg(format!(
            "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem")
        ))
        .arg(format!("TCP:127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .expect("socat");
    eventually("the TLS proxy listening", WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    });
    let config = |ca: &str| {
        format!(
            "heartbeat = \"0\"\nrate-limit = 0\nstop-timeout = \"1s\"\n\
             listen = [\"tcp://127.0.0.1:0\"]\n\
             [[output]]\nto = \"kafka+tls://127.0.0.1:{tls_port}/logs\"\n\
             kafka-compression = \"snappy\"\nkafka-key = \"hostname\"\n\
             tls-ca = \"{ca}\"\ntls-cert = \"{}\"\ntls-key = \"{}\"\n",
            pki.path("client1.pem"),
            pki.path("client1.key")
        )
    };
    let d = Builder::new().config(&config(&pki.path("ca.pem"))).start();
    send(&d, 0..2_000, "web1");
    let anchor = format!("\"output\":\"kafka+tls://127.0.0.1:{tls_port}/logs\"");
    d.wait_for_status_count(&anchor, "written", 2_000);
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    let tls = format!(
        ", security_protocol='SSL', ssl_cafile='{}', ssl_certfile='{}', ssl_keyfile='{}', \
         ssl_check_hostname=False",
        pki.path("ca.pem"),
        pki.path("client1.pem"),
        pki.path("client1.key")
    );
    let seen = counts(&records_with(tls_port, &tls));
    assert_eq!(
        seen.len(),
        2_000,
        "read back through TLS, Snappy batches decoded"
    );

    let d = Builder::new()
        .config(&config(&other.path("ca.pem")))
        .start();
    send(&d, 2_000..2_010, "web1");
    eventually("an error for the broker no CA of ours signed", WAIT, || {
        json_number(&d.status_json(), &anchor, "errors").is_some_and(|n| n > 0)
    });
    assert_eq!(json_number(&d.status_json(), &anchor, "written"), Some(0));
    let (_, _, stderr) = d.stop();
    assert!(
        stderr.contains("certificate"),
        "the reason is said: {stderr}"
    );
    let _ = proxy.kill();
    let _ = proxy.wait();
}
