//! TLS inputs (RFC 5425) with real clients: Python's `ssl` and `openssl s_client` (both
//! OpenSSL), rsyslog's gtls driver (GnuTLS) forwarding into logger, and the refusals an
//! operator must be able to trust: no certificate, an unknown CA, an expired or revoked
//! certificate, a name or fingerprint not allowed, plaintext, silence. The PKI is made here,
//! per test, with `openssl` (and `faketime` for the expired certificate).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::support::*;

/// The tests of this module, for the harness.
pub const TESTS: &[Test] = tests![
    a_client_with_a_certificate_from_the_ca_is_served_and_named,
    clients_the_ca_does_not_vouch_for_are_refused_and_counted,
    pinned_fingerprints_accept_those_certificates_alone,
    plaintext_and_silence_on_a_tls_port_are_closed_and_counted,
    a_tls_record_sent_a_byte_at_a_time_is_closed_at_frame_timeout,
    a_reload_gives_new_handshakes_new_certificates_and_keeps_connections,
    rsyslog_forwards_into_logger_over_mutual_tls,
    a_socket_passed_as_tls_is_served_with_the_input_at_its_address,
];

/// A test PKI in `dir`: a CA, a server certificate for server.example.net and 127.0.0.1, and
/// client certificates made on demand.
pub struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.ca("ca", "Test CA");
        pki.leaf("server", "server.example.net", "ca", None);
        pki.leaf("client1", "client1.example.net", "ca", None);
        pki
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A self-signed CA: NAME.pem, NAME.key.
    fn ca(&self, name: &str, cn: &str) {
        openssl(
            &self.dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "30",
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
    }

    /// A certificate for `cn` (also its DNS name, and 127.0.0.1) signed by `ca`: NAME.pem,
    /// NAME.key. `faketime` signs it at that time instead of now (one day of validity).
    fn leaf(&self, name: &str, cn: &str, ca: &str, faketime: Option<&str>) {
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        std::fs::write(
            self.dir.join(format!("{name}.ext")),
            format!(
                "subjectAltName=DNS:{cn},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .unwrap();
        let days = if faketime.is_some() { "1" } else { "10" };
        let sign = [
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            days,
            "-extfile",
            &format!("{name}.ext"),
        ]
        .map(str::to_owned);
        let mut cmd = match faketime {
            Some(t) => {
                let mut c = Command::new("faketime");
                c.arg(t).arg("openssl");
                c
            }
            None => Command::new("openssl"),
        };
        let out = cmd.args(sign).current_dir(&self.dir).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A CRL of `ca` revoking the certificates `revoked`: NAME.crl.
    fn crl(&self, ca: &str, revoked: &[&str]) -> String {
        let d = &self.dir;
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("crlnumber"), "01\n").unwrap();
        std::fs::write(
            d.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = d\n[d]\ndatabase = {0}/index.txt\ncrlnumber = {0}/crlnumber\n\
                 certificate = {0}/{ca}.pem\nprivate_key = {0}/{ca}.key\ndefault_md = sha256\n\
                 default_crl_days = 30\n",
                d.display()
            ),
        )
        .unwrap();
        for r in revoked {
            openssl(
                d,
                &["ca", "-config", "ca.cnf", "-revoke", &format!("{r}.pem")],
            );
        }
        openssl(
            d,
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-gencrl",
                "-out",
                &format!("{ca}.crl"),
            ],
        );
        self.path(&format!("{ca}.crl"))
    }

    /// The SHA-256 fingerprint of NAME.pem as openssl prints it.
    fn fingerprint(&self, name: &str) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.path(&format!("{name}.pem")))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// What a TLS client did.
struct Session {
    /// It connected, sent, and saw no refusal.
    served: bool,
    /// The error it saw, if any.
    error: String,
}

/// Python's ssl (OpenSSL): connects to `addr`, verifies the server against the PKI's CA as
/// server.example.net, presents `client` (NAME.pem/NAME.key) if given, sends `messages`
/// octet-counted, then waits (bounded) for the server to refuse it or for silence. A refusal
/// of a client certificate arrives after the client's side of a TLS 1.3 handshake: only a
/// read sees it.
fn python_client(pki: &Pki, addr: &str, client: Option<&str>, messages: &[&str]) -> Session {
    const SCRIPT: &str = r#"
import socket, ssl, sys
host, port, ca, cert, key = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
if cert != "-":
    ctx.load_cert_chain(cert, key)
try:
    s = socket.create_connection((host, int(port)), timeout=10)
    t = ctx.wrap_socket(s, server_hostname="server.example.net")
    for m in sys.argv[6:]:
        b = m.encode()
        t.sendall(str(len(b)).encode() + b" " + b)
    t.settimeout(1.5)
    try:
        d = t.recv(1)
        print("ERROR closed by the server" if d == b"" else "ERROR data from the server")
    except (socket.timeout, TimeoutError):
        print("SERVED")
    t.close()
except Exception as e:
    print("ERROR", e)
"#;
    let (host, port) = addr.rsplit_once(':').unwrap();
    let (cert, key) = match client {
        Some(c) => (pki.path(&format!("{c}.pem")), pki.path(&format!("{c}.key"))),
        None => ("-".into(), "-".into()),
    };
    let out = Command::new("python3")
        .args(["-c", SCRIPT, host, port, &pki.path("ca.pem"), &cert, &key])
        .args(messages)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let out = wait_output(out, WAIT);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Session {
        served: text == "SERVED",
        error: text,
    }
}

fn require_tools() {
    require!(have("openssl"), "openssl is not installed");
    require!(have("python3"), "python3 is not installed");
}

/// Waits (bounded) until `file` holds `needle`; returns its text.
fn wait_for(file: &Path, needle: &str) -> String {
    within(WAIT, || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        match text.contains(needle) {
            true => Ok(text),
            false => Err(format!(
                "no {needle:?} in {}; it holds:\n{text}",
                file.display()
            )),
        }
    })
}

/// A daemon with one TLS input on a free loopback port, configured by `input` (the
/// [[input]] keys after listen), writing JSON lines to out.json.
fn tls_daemon(b: Builder, input: &str) -> Daemon {
    let out = b.dir().join("out.json");
    b.config(&format!(
        "rate-limit = 0\n[[input]]\nlisten = \"tls://127.0.0.1:0\"\n{input}\n\
         [[output]]\nto = \"file:{}\"\nformat = \"json\"\n",
        out.display()
    ))
    .start()
}

/// The server's keys and the PKI's CA for client certificates (mutual TLS).
fn mutual(pki: &Pki) -> String {
    format!(
        "{}tls-client-ca = \"{}\"\n",
        server_keys(pki),
        pki.path("ca.pem")
    )
}

fn server_keys(pki: &Pki) -> String {
    format!(
        "tls-cert = \"{}\"\ntls-key = \"{}\"\n",
        pki.path("server.pem"),
        pki.path("server.key")
    )
}

fn a_client_with_a_certificate_from_the_ca_is_served_and_named() {
    require_tools();
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    let d = tls_daemon(b, &mutual(&pki));
    let addr = d.addr("tls");
    let s = python_client(
        &pki,
        &addr,
        Some("client1"),
        &[
            "<13>1 2026-11-24T10:00:00Z web1 app 7 - - first over TLS",
            "<14>second over TLS",
        ],
    );
    assert!(s.served, "the client was not served: {}", s.error);
    let out = d.path("out.json");
    let text = wait_for(&out, "second over TLS");
    let first = text
        .lines()
        .find(|l| l.contains("first over TLS"))
        .expect("the first message");
    assert!(first.contains(r#""transport":"tls""#), "{first}");
    assert!(
        first.contains(r#""tls_peer":"CN=client1.example.net, DNS:client1.example.net""#),
        "the verified client is not named: {first}"
    );
    // openssl s_client, newline-framed, is the same client to us.
    let mut s_client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr, "-CAfile"])
        .arg(pki.path("ca.pem"))
        .args([
            "-cert",
            &pki.path("client1.pem"),
            "-key",
            &pki.path("client1.key"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    s_client
        .stdin
        .take()
        .unwrap()
        .write_all(b"<13>from s_client\n")
        .unwrap();
    wait_for(&out, "from s_client");
    let _ = s_client.kill();
    let _ = s_client.wait();
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("TLS handshakes failed 0, not TLS 0"),
        "{stderr}"
    );
}

fn clients_the_ca_does_not_vouch_for_are_refused_and_counted() {
    require_tools();
    require!(have("faketime"), "faketime is not installed");
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    pki.ca("other", "Other CA");
    pki.leaf("stranger", "client1.example.net", "other", None);
    pki.leaf(
        "expired",
        "client1.example.net",
        "ca",
        Some("2020-01-01 00:00:00"),
    );
    pki.leaf("revoked", "client1.example.net", "ca", None);
    let crl = pki.crl("ca", &["revoked"]);
    let d = tls_daemon(
        b,
        &format!(
            "{}tls-crl = \"{crl}\"\ntls-client-names = [\"*.example.net\"]\n",
            mutual(&pki)
        ),
    );
    let addr = d.addr("tls");
    for (client, alert) in [
        (None, "CERTIFICATE_REQUIRED"),
        (Some("stranger"), "UNKNOWN_CA"),
        (Some("expired"), "EXPIRED"),
        (Some("revoked"), "REVOKED"),
    ] {
        let s = python_client(&pki, &addr, client, &["<13>must not be written"]);
        assert!(!s.served, "{client:?} was served");
        assert!(
            s.error.to_uppercase().contains(alert),
            "{client:?}: the client saw {:?}, not an alert {alert}",
            s.error
        );
    }
    // The one accepted client still gets through after the refusals.
    let s = python_client(&pki, &addr, Some("client1"), &["<13>the good one"]);
    assert!(s.served, "{}", s.error);
    let out = wait_for(&d.path("out.json"), "the good one");
    assert!(!out.contains("must not be written"), "{out}");
    let (status, _, stderr) = d.stop();
    assert!(status.success());
    assert!(stderr.contains("TLS handshakes failed 4,"), "{stderr}");
    assert!(
        stderr.contains("peer sent no certificates") || stderr.contains("more refusals not logged"),
        "the first refusal is not logged with its reason: {stderr}"
    );

    // A name outside tls-client-names is refused though the CA signed it.
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    pki.leaf("misnamed", "client2.example.net", "ca", None);
    let d = tls_daemon(
        b,
        &format!(
            "{}tls-client-names = [\"client1.example.net\"]\n",
            mutual(&pki)
        ),
    );
    let s = python_client(
        &pki,
        &d.addr("tls"),
        Some("misnamed"),
        &["<13>not this name"],
    );
    assert!(!s.served, "a name outside tls-client-names was served");
    let s = python_client(&pki, &d.addr("tls"), Some("client1"), &["<13>this name"]);
    assert!(s.served, "{}", s.error);
    wait_for(&d.path("out.json"), "this name");
    let (_, _, stderr) = d.stop();
    assert!(
        stderr.contains("none of its names is in tls-client-names"),
        "{stderr}"
    );
    assert!(stderr.contains("TLS handshakes failed 1,"), "{stderr}");
}

fn pinned_fingerprints_accept_those_certificates_alone() {
    require_tools();
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    // A self-signed client: no CA vouches for it, its fingerprint does.
    pki.ca("selfsigned", "client9.example.net");
    pki.leaf("client2", "client2.example.net", "ca", None);
    let d = tls_daemon(
        b,
        &format!(
            "{}tls-client-fingerprints = [\"{}\"]\n",
            server_keys(&pki),
            pki.fingerprint("selfsigned")
        ),
    );
    let addr = d.addr("tls");
    let s = python_client(&pki, &addr, Some("selfsigned"), &["<13>pinned client"]);
    assert!(s.served, "{}", s.error);
    let s = python_client(&pki, &addr, Some("client2"), &["<13>not pinned"]);
    assert!(!s.served, "a certificate not pinned was served");
    let out = wait_for(&d.path("out.json"), "pinned client");
    assert!(
        out.contains(r#""tls_peer":"CN=client9.example.net""#),
        "{out}"
    );
    let (_, _, stderr) = d.stop();
    assert!(stderr.contains("TLS handshakes failed 1,"), "{stderr}");
    assert!(
        stderr.contains("its fingerprint is not in tls-client-fingerprints"),
        "{stderr}"
    );
}

fn plaintext_and_silence_on_a_tls_port_are_closed_and_counted() {
    require_tools();
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    let mut keys = server_keys(&pki);
    keys.push_str("frame-timeout = \"1s\"\n");
    let d = tls_daemon(b, &keys);
    let addr = d.addr("tls");
    // Plaintext syslog: closed at its first bytes, long before any timeout.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain.write_all(b"<13>plaintext on a TLS port\n").unwrap();
    let started = Instant::now();
    assert!(
        closed_by_peer(&mut plain, Duration::from_millis(900)),
        "plaintext was not closed before frame-timeout"
    );
    // A connection that never says anything: closed at frame-timeout (the handshake deadline).
    let mut silent = TcpStream::connect(&addr).unwrap();
    assert!(
        closed_by_peer(&mut silent, WAIT),
        "a silent connection was not closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Neither costs the service: a real client is served after them.
    let s = python_client(&pki, &addr, None, &["<13>after the noise"]);
    assert!(s.served, "{}", s.error);
    let out = wait_for(&d.path("out.json"), "after the noise");
    assert!(!out.contains("plaintext"), "{out}");
    let (_, _, stderr) = d.stop();
    assert!(
        stderr.contains("TLS handshakes failed 1, not TLS 1"),
        "{stderr}"
    );
    assert!(stderr.contains("did not start a TLS handshake"), "{stderr}");
}

/// After a completed handshake, a client sends one TLS record a byte every 200 ms and never
/// finishes it. Every byte used to count as activity and none as a frame, so neither
/// frame-timeout nor idle-timeout closed it (250 of 250 still open after 16 s). A partial
/// record now runs under frame-timeout.
fn a_tls_record_sent_a_byte_at_a_time_is_closed_at_frame_timeout() {
    require_tools();
    const SCRIPT: &str = r#"
import socket, ssl, sys, time, select
host, port, ca = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
s = socket.create_connection((host, int(port)), timeout=10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inc, out, server_hostname="server.example.net")
while True:
    try:
        o.do_handshake()
        break
    except ssl.SSLWantReadError:
        s.sendall(out.read())
        d = s.recv(65536)
        if not d:
            print("ERROR closed during the handshake"); sys.exit()
        inc.write(d)
s.sendall(out.read())
o.write(b"20 <13>slow: one record")
record = out.read()
start = time.monotonic()
for i in range(len(record) - 1):
    try:
        s.sendall(record[i:i + 1])
    except OSError:
        print("CLOSED %.1f" % (time.monotonic() - start)); sys.exit()
    if select.select([s], [], [], 0.2)[0]:
        try:
            d = s.recv(65536)
        except OSError:
            d = b""
        if not d:
            print("CLOSED %.1f" % (time.monotonic() - start)); sys.exit()
print("OPEN after %.1f" % (time.monotonic() - start))
"#;
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    let mut keys = server_keys(&pki);
    keys.push_str("frame-timeout = \"1s\"\nidle-timeout = \"30s\"\n");
    let d = tls_daemon(b, &keys);
    let addr = d.addr("tls");
    let (host, port) = addr.rsplit_once(':').unwrap();
    let child = Command::new("python3")
        .args(["-c", SCRIPT, host, port, &pki.path("ca.pem")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let out = wait_output(child, WAIT);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(text.starts_with("CLOSED"), "{text}");
    let (_, _, stderr) = d.stop();
    assert!(stderr.contains("slow connections closed 1"), "{stderr}");
    assert!(!stderr.contains("one record"), "{stderr}");
}

/// The subject of the certificate the server at `addr` presents now.
fn presented(addr: &str) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-brief", "-connect", addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("Peer certificate: "))
        .unwrap_or_else(|| panic!("no peer certificate in {text}"))
        .to_owned()
}

fn a_reload_gives_new_handshakes_new_certificates_and_keeps_connections() {
    require_tools();
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    pki.leaf("renewed", "renewed.example.net", "ca", None);
    // The files the configuration names, replaced the way certbot and friends do: a rename.
    let (cert, key) = (pki.path("live.pem"), pki.path("live.key"));
    std::fs::copy(pki.path("server.pem"), &cert).unwrap();
    std::fs::copy(pki.path("server.key"), &key).unwrap();
    let d = tls_daemon(b, &format!("tls-cert = \"{cert}\"\ntls-key = \"{key}\"\n"));
    let addr = d.addr("tls");
    assert_eq!(presented(&addr), "CN = server.example.net");
    // A client connected before the reload...
    let mut before = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = before.stdin.take().unwrap();
    stdin.write_all(b"<13>before the reload\n").unwrap();
    let out = d.path("out.json");
    wait_for(&out, "before the reload");

    let replace = |from: &str, to: &str| {
        let tmp = format!("{to}.new");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    };
    replace(&pki.path("renewed.pem"), &cert);
    replace(&pki.path("renewed.key"), &key);
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("READY=1");
    // ...keeps its session; new handshakes get the new certificate.
    stdin
        .write_all(b"<13>after the reload, same connection\n")
        .unwrap();
    wait_for(&out, "after the reload, same connection");
    assert_eq!(presented(&addr), "CN = renewed.example.net");

    // A broken new certificate keeps the one in use, and says why.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.notify.expect("READY=1");
    assert_eq!(presented(&addr), "CN = renewed.example.net");
    stdin.write_all(b"<13>still the same connection\n").unwrap();
    wait_for(&out, "still the same connection");
    drop(stdin);
    let _ = before.kill();
    let _ = before.wait();
    let (status, _, stderr) = d.stop();
    assert!(status.success());
    assert!(
        stderr.contains("new connections keep the certificates it had"),
        "{stderr}"
    );
}

fn rsyslog_forwards_into_logger_over_mutual_tls() {
    require_tools();
    require!(have("rsyslogd"), "rsyslog is not installed");
    require!(
        Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
            || Path::new("/usr/lib/rsyslog/lmnsd_gtls.so").exists(),
        "rsyslog-gnutls is not installed"
    );
    require!(have("logger"), "util-linux logger is not installed");
    let b = Builder::new();
    let pki = Pki::new(b.dir());
    let d = tls_daemon(
        b,
        &format!(
            "{}tls-client-names = [\"client1.example.net\"]\n",
            mutual(&pki)
        ),
    );
    let port = d.port("tls");
    // rsyslog takes messages on a socket of its own and forwards them, octet-counted, over TLS
    // with its client certificate, checking ours by name (x509/name).
    let mut rsyslog = Rsyslog::start_with_global(
        &format!(
            " DefaultNetstreamDriverCAFile=\"{ca}\" \
             DefaultNetstreamDriverCertFile=\"{cert}\" \
             DefaultNetstreamDriverKeyFile=\"{key}\"",
            ca = pki.path("ca.pem"),
            cert = pki.path("client1.pem"),
            key = pki.path("client1.key"),
        ),
        &format!(
            "module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{{dir}}/in.sock\" CreatePath=\"on\")\n\
             action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" \
               TCP_Framing=\"octet-counted\" StreamDriver=\"gtls\" StreamDriverMode=\"1\" \
               StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"server.example.net\")\n"
        ),
        &[],
    );
    let socket = rsyslog.path("in.sock");
    eventually("rsyslogd making its socket", WAIT, || socket.exists());
    for i in 0..20 {
        let status = Command::new("logger")
            .arg("-u")
            .arg(&socket)
            .args(["-t", "viarsyslog", &format!("relayed message {i:02}")])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = d.path("out.json");
    let text = wait_for(&out, "relayed message 19");
    rsyslog.stop();
    let relayed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("relayed message"))
        .collect();
    assert_eq!(relayed.len(), 20, "{text}");
    for line in relayed {
        assert!(line.contains(r#""transport":"tls""#), "{line}");
        assert!(line.contains("CN=client1.example.net"), "{line}");
        assert!(line.contains("viarsyslog"), "{line}");
    }
    let (status, _, stderr) = d.stop();
    assert!(status.success(), "{stderr}");
}

/// Runs the daemon on a TCP socket bound by a launcher and passed the way systemd passes it
/// (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES=tls); the launcher writes the port it bound into
/// the configuration (for PORT) before it execs the daemon.
const LAUNCHER: &str = r#"
import os, socket, sys
s = socket.create_server(("127.0.0.1", 0))
port = s.getsockname()[1]
conf = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")][0]
text = open(conf).read().replace("PORT", str(port))
open(conf, "w").write(text)
fd = s.detach()
os.dup2(fd, 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="tls")
os.execv(sys.argv[1], sys.argv[1:])
"#;

fn a_socket_passed_as_tls_is_served_with_the_input_at_its_address() {
    require_tools();
    let b = Builder::new().wrapped_in(&["python3", "-c", LAUNCHER]);
    let pki = Pki::new(b.dir());
    let out = b.dir().join("out.json");
    let d = b
        .config(&format!(
            "[[input]]\nlisten = \"tls://127.0.0.1:PORT\"\n{}\n[[output]]\nto = \"file:{}\"\n\
             format = \"json\"\n",
            server_keys(&pki),
            out.display()
        ))
        .start();
    let addr = d.addr("tls");
    let s = python_client(&pki, &addr, None, &["<13>through the passed socket"]);
    assert!(s.served, "{}", s.error);
    wait_for(&out, "through the passed socket");
    let (status, _, _) = d.stop();
    assert!(status.success());

    // Passed as TLS with no certificate for it: a clear refusal to start.
    let b = Builder::new().wrapped_in(&["python3", "-c", LAUNCHER]);
    let (out, _) = b
        .config("listen = [\"udp://127.0.0.1:0\"]\n# PORT\n")
        .fail();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("passed as TLS") && stderr.contains("tls-cert"),
        "{stderr}"
    );
}
