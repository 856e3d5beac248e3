//! The command line: flags, their help text, and nothing else.
//!
//! Pure: `Cli` is what clap parsed. Merging it with the configuration file happens in `config`.

use std::path::PathBuf;

use clap::Parser;

use crate::listen::ListenAddr;

const AFTER_HELP: &str = "\
INPUTS (--listen, repeatable; also `listen = [...]` in the configuration file)
    unix:///PATH          datagram socket, what syslog(3) and `logger -u PATH` send to
    unix-stream:///PATH   stream socket, framed like TCP
    udp://ADDR:PORT       syslog over UDP (RFC 5426); IPv6 as udp://[::1]:514
    tcp://ADDR:PORT       syslog over TCP (RFC 6587: octet counting or newline framing)
    tls://ADDR:PORT       syslog over TLS (RFC 5425; 6514 is its port); needs an [[input]]
    relp://ADDR:PORT      RELP (rsyslog's omrelp, logger's forward output): each message is
                          acknowledged only once every output took it (written, in the
                          journal, or on a forward output's disk queue)
    relp+tls://ADDR:PORT  RELP under TLS; needs an [[input]] like tls://
    journal-remote://ADDR:PORT  what systemd-journal-upload sends (POST /upload, the Journal
                          Export Format; 19532 is its port): every field of every entry, each
                          request answered 2xx only once every output took its entries
    journal-remote+https://ADDR:PORT  the same over HTTPS; needs an [[input]] like tls://
    Port 0 picks a free port; the bound address is logged and sent in STATUS=.
    Under socket activation (LISTEN_FDS, e.g. logger.socket) the passed sockets are used; one
    named FileDescriptorName=tls (relp, relp+tls, journal-remote, journal-remote+https) is
    served as that, with the [[input]] at its address.
    Default: udp://127.0.0.1:5514, tcp://127.0.0.1:5514 and unix://DIR/log, where DIR is
    $RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR/logger, else /run/logger.
    An [[input]] table says more about one input (any listen or [[input]] replaces the default):
      listen = \"tls://0.0.0.0:6514\"
      allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]  only these networks, checked before parsing
      tls-cert = \"/etc/logger/tls/server.pem\"   certificate chain (PEM), and its key:
      tls-key = \"/etc/logger/tls/server.key\"    re-read on SIGHUP (a bad new one keeps the old)
      tls-client-ca = \"/etc/logger/tls/ca.pem\"  set: clients need a certificate from these CAs
      tls-client-names = [\"*.example.net\"]      and one of these names (DNS SAN or CN)
      tls-client-fingerprints = [\"SHA256:AB:..\"] or pin certificates by SHA-256 fingerprint
      tls-crl = [\"/etc/logger/tls/ca.crl\"]      revocation lists for the client CA
      and its own max-message-size, max-connections, ... (the limits below) if it needs them.
    An [[input]] may read a log of the host's instead of listening, every entry once (the
    position is kept in state-dir and advances once the outputs took it):
      read = \"journal\"                the local journal, every field of every entry
      journal-match = [\"_SYSTEMD_UNIT=sshd.service\", \"+\", \"PRIORITY=3\"]  as journalctl
      read = \"kmsg\"                   the kernel's (/dev/kmsg): priority, sequence number,
                                      time and device of each record
    A TLS handshake must finish within frame-timeout; a client's verified certificate names
    it in LOGGER_TLS_PEER (tls-peer in rfc5424, tls_peer in json).

OUTPUTS (--output, repeatable; also `output = \"...\"` or [[output]] tables in the file)
    journal      one journal entry per message, with SYSLOG_IDENTIFIER, SYSLOG_PID, PRIORITY,
                 SYSLOG_FACILITY, SYSLOG_TIMESTAMP and LOGGER_* origin fields
    file:PATH    one line per message, control characters escaped; reopened on SIGHUP.
                 PATH may hold {hostname}, {peer}, {program}, {facility}, {date}: one file per
                 value (sanitised to one path component; links under it are never followed)
    stderr       the same lines on standard error
    auto         stderr when run in a terminal; else journal if /run/systemd/journal/socket
                 exists; else stderr in the foreground, file:/var/log/logger.log with --fork
    Each --output takes every message. An [[output]] table chooses with syslog.conf rules:
      to = \"file:/var/log/auth.log\"   where (as above)
      match = \"auth,authpriv.*\"       selectors: facility.severity (that or more severe),
                                      =sev, !sev, none, *, lists with `,`, joined with `;`
      format = \"detailed\"             files and stderr: detailed (TIME HOST TAG[PID]
                                      FACILITY.SEVERITY: TEXT, received time in UTC,
                                      reversible escapes; the default) | traditional and
                                      rfc3339 (rsyslog's RSYSLOG_TraditionalFileFormat and
                                      RSYSLOG_FileFormat, byte for byte) | rfc5424 | json
      time-zone = \"local\"             local | UTC: times the sender gave no zone for
      transport = [\"udp\", \"tcp\"]      and optionally program, hostname, source (networks)
      queue-policy = \"block\"          when its queue is full: block (hold the inputs back,
                                      lose nothing; the default), drop (drop for this
                                      output, counted) or block-bounded (block while the
                                      output moves, drop once it took nothing for 2 s: the
                                      default of outputs to a remote: forward,
                                      journal-remote, kafka)
      queue-size = 262144             the queue's bound in bytes
    A forward output sends to remote collectors (to = [\"relp://a:2514\", \"relp://b:2514\"]
    keeps to the first it reaches; when that one fails, the next takes over). udp:// may lose
    anything; tcp:// (RFC 6587) and tls:// (RFC 5425)
    send again what the remote's TCP had not acknowledged when the connection broke, and lose
    only what the remote had not read when it died; relp:// and relp+tls:// (rsyslog's RELP)
    are acknowledged message by message, and what was not is sent again after a reconnect:
      to = \"relp+tls://collector.example.net:2514\"
      format = \"rfc5424\"              rfc5424 | rfc3164 (old receivers)
      framing = \"octet-counting\"      octet-counting | lf (tcp:// and tls://)
      tls-ca = \"/etc/logger/tls/ca.pem\"  the CA the remote's certificate must chain to, and
      tls-name = \"collector...\"       the name it must carry (default: the host of `to`)
      tls-fingerprint = [\"SHA256:..\"]  or the remote's certificate, pinned
      tls-cert, tls-key               our certificate and key (mutual TLS)
      queue-dir = \"/var/lib/logger/queue/central\"  a crash-safe disk queue: messages wait
                                      there until delivered, across restarts and SIGKILL
      queue-max-bytes = \"1G\"          its bound; full: queue-policy block, drop or
                                      block-bounded (new messages) or drop-oldest (the
                                      oldest segment), counted
      queue-fsync = \"batch\"           batch (fdatasync per write) | off | a period (\"1s\")
      remote-timeout = \"90s\"          a remote that answers nothing (RELP) or takes nothing
                                      (TCP, TLS) this long is dead: the next in `to` takes
                                      over, and what it left unacknowledged is sent there
    journal-remote+http://HOST:PORT (or +https with the tls-* keys) uploads to
    systemd-journal-remote in the Journal Export Format, every field kept; an entry leaves
    only once journal-remote answered 2xx.
    kafka://HOST:PORT[,HOST:PORT...]/TOPIC (or kafka+tls:// with the tls-* keys) produces
    each message as a record (acks=all, idempotent: a retry never duplicates); it leaves
    only once the partition leader and its in-sync replicas have it:
      format = \"json\"                json (every field; the default) | rfc5424
      kafka-key = \"hostname\"         one host's messages in one partition, in order
                                      (default none: a batch at a time per partition)
      kafka-compression = \"snappy\"   batches compressed (default none)
    queue-dir and its keys work on every output, not only forward ones.
    A message goes to every output that takes it; one no output takes is counted unrouted.
    Each output writes from its own thread: a stuck one holds up no other, unless it blocks.

CONFIGURATION FILE (TOML; flags win over the file)
    --config FILE, else /etc/logger/logger.toml if it exists, else the defaults. Keys:
    listen, input, output, pidfile, user, group, umask, log-level, log-file, heartbeat,
    max-message-size, max-connections, max-connections-per-source, frame-timeout,
    idle-timeout, receive-buffer, rate-limit, rate-limit-burst, escape-control-characters,
    journal-socket, stop-timeout, state-dir, control-socket, control-mode, metrics-listen,
    metrics-allow. Run --check-config to see the effective values; man 5 logger.toml says
    what each means.

QUERYING THE RUNNING DAEMON
    logger --status [--json]  inputs (address, connections, received, refused by reason),
                              outputs (written, queued, dropped, errors, connection), the
                              configuration's file and when it was loaded; asked over the
                              control socket (control-socket, default RUNTIME_DIR/control,
                              mode 0600: root and the daemon's user)
    logger --reload           reload and wait: exit 0 once the new configuration runs, 78 with
                              the reason when it is refused and the running one kept
                              (the unit's ExecReload: `systemctl reload logger` fails too)
    metrics-listen = \"127.0.0.1:9327\"   GET /metrics in the Prometheus text format (off
                              by default; metrics-allow = [\"10.0.0.0/8\"] narrows it)

SIGNALS
    SIGHUP           reload: re-read the configuration, reopen output files, rebind changed
                     listeners; an invalid new configuration is logged and the old one kept
    SIGTERM, SIGINT  stop accepting, write out everything accepted, exit 0; an output still
                     blocked after stop-timeout (10s) has what it holds logged as lost

EXIT STATUS
    0   success                      69  unavailable: address in use, output or PID file
    1   failure while running        71  operating-system error (fork, setsid, signals)
    64  usage error                  78  invalid configuration

FILES
    /etc/logger/logger.toml   the configuration (every key: man 5 logger.toml)
    /run/logger/log           the local datagram socket (logger.socket binds it under systemd)
    /run/logger.pid           with --fork as root: the PID file
    /var/lib/logger           state: disk queues of forward outputs (queue-dir)
    /usr/share/doc/logger/examples
                              debian-rules.toml (Debian's rsyslog rules as outputs),
                              system-logger.conf (a unit drop-in that lets logger write
                              /var/log as rsyslog does) and logrotate (their rotation)

EXAMPLES
    logger                    the service: syslog on 127.0.0.1:5514 and /run/logger/log
                              into the journal, in the foreground, READY=1 once it serves
    logger --listen udp://0.0.0.0:514 --output file:/var/log/remote.log
                              a LAN's UDP syslog into one file, detailed lines
    logger --fork --pidfile /run/logger.pid
                              a SysV daemon for a host without systemd
    logger --check-config     the effective configuration, or why the file is refused
    systemctl reload logger   re-read the configuration, reopen files (SIGHUP)

SENDING A MESSAGE (util-linux logger(1))
    This is the syslog daemon. A command line with no daemon option above but a message or
    util-linux logger's options (logger -t backup done, logger -p auth.err -- text), or piped
    input without arguments (echo x | logger), is handed unchanged to util-linux logger(1), the
    first other `logger` in PATH or /usr/bin/logger. Its help: /usr/bin/logger --help; its
    version: logger -V.
    Example: logger -n 127.0.0.1 -P 5514 hello";

/// `logger`: a small, hardened syslog daemon that relays local and network syslog into the
/// systemd journal, files or stderr.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "logger",
    version,
    about = "A small, hardened syslog daemon: local and network syslog into journald, files or stderr",
    long_about = "A small, hardened syslog daemon. It receives syslog messages from local programs \
                  (Unix sockets) and from the network (UDP and TCP), parses RFC 5424, RFC 3164 and \
                  syslog(3) forms, and writes them into the systemd journal with structured fields, \
                  or into files or stderr. By default it runs in the foreground as a systemd \
                  Type=notify service; --fork daemonizes for hosts without systemd.",
    after_long_help = AFTER_HELP,
    after_help = "See --help for inputs, outputs, the configuration file, signals and exit status."
)]
pub struct Cli {
    /// Read the configuration from FILE (TOML) instead of /etc/logger/logger.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Receive messages on URL (repeatable): unix:///PATH, unix-stream:///PATH, udp://ADDR:PORT,
    /// tcp://ADDR:PORT, relp://ADDR:PORT, journal-remote://ADDR:PORT (tls://, relp+tls:// and
    /// journal-remote+https:// need an [[input]] table for their certificate).
    #[arg(long, value_name = "URL")]
    pub listen: Vec<ListenAddr>,

    /// Where messages go (repeatable: each takes every message): auto, journal, stderr or
    /// file:PATH. Replaces the outputs of the configuration file.
    #[arg(long, value_name = "OUTPUT")]
    pub output: Vec<String>,

    /// Daemonize the SysV way (for hosts without systemd); the command exits once the daemon
    /// serves, or fails with its error.
    #[arg(long)]
    pub fork: bool,

    /// With --fork: the PID file (default /run/logger.pid as root).
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Run as this user after binding sockets and opening files.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Run as this group after binding sockets and opening files.
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,

    /// With --fork: the file-creation mask, in octal (default 027).
    #[arg(long, value_name = "OCTAL")]
    pub umask: Option<String>,

    /// Write a newline to descriptor N once ready, then close it (s6 notification-fd, OpenRC
    /// notify=fd:N).
    #[arg(long, value_name = "N")]
    pub notify_fd: Option<i32>,

    /// Verbosity of the daemon's own log: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Validate the configuration, print the effective values and exit.
    #[arg(long)]
    pub check_config: bool,

    /// Show what the running daemon does (inputs, outputs, counters, its configuration), asked
    /// over its control socket; exit 69 if no daemon answers.
    #[arg(long, conflicts_with_all = ["reload", "check_config", "fork"])]
    pub status: bool,

    /// With --status: JSON in the documented schema (\"inputs\" and \"outputs\" arrays), for
    /// scripts.
    #[arg(long, requires = "status")]
    pub json: bool,

    /// Ask the running daemon to reload its configuration and wait for the outcome: exit 0 once
    /// the new configuration runs, 78 with the reason when it is refused (the running one is
    /// kept). The unit's ExecReload, so that `systemctl reload logger` fails visibly.
    #[arg(long, conflicts_with_all = ["check_config", "fork"])]
    pub reload: bool,

    /// Catches a word after daemon options (`logger --fork hello`); without daemon options,
    /// `client` hands such a command line to util-linux logger(1) before this parser runs.
    #[arg(hide = true, num_args = 0..)]
    pub stray: Vec<String>,
}
