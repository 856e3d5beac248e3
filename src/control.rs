//! The control socket: `logger --status` and `logger --reload` ask the running daemon, which
//! answers from its service loop.
//!
//! A unix stream socket in the runtime directory (`control-socket`), mode 0600 or 0660
//! (`control-mode`), never on the network. Each connection sends one request line, `status`,
//! `status json` or `reload`, and reads the answer to the end: `ok` or `error` on the first
//! line, then the body (the status, or why a reload was refused). Every peer's credentials are
//! checked (SO_PEERCRED) on top of the file's mode: root and the daemon's own user, and with
//! 0660 whoever the file lets in. Garbage gets an `error` line; a client that sends nothing or
//! reads nothing is dropped after [`CLIENT_TIMEOUT`]. At most [`MAX_CLIENTS`] are served at
//! once, each on a short-lived thread; past that a client is told `busy`. A flood costs these
//! threads, never the loop, which answers each question from counters it already has.
//!
//! The client side finds the socket as the daemon placed it: the same configuration (its
//! `control-socket`, else the runtime directory), and the defaults if the file cannot be read
//! (a reload is how a broken file is found out).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{Event, Request};

/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the loop may take to answer a status request.
const STATUS_WAIT: Duration = Duration::from_secs(10);
/// How long a reload may take (it binds listeners, reads certificates, scans disk queues).
const RELOAD_WAIT: Duration = Duration::from_secs(120);
/// The longest request line.
const MAX_REQUEST: u64 = 64;
/// Clients served at once.
const MAX_CLIENTS: usize = 8;

/// A bound control socket, before its thread starts.
pub(crate) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// 0660: peers the file lets in are served whoever they are.
    group: bool,
    /// The socket file we made, to remove at exit only if it is still ours.
    file: Option<(u64, u64)>,
}

/// The socket file of a running control socket: removed at a clean exit if no other instance
/// has put its own there since.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    file: Option<(u64, u64)>,
}

impl SocketFile {
    /// Removes the file if it is still the one we bound.
    pub(crate) fn remove(self) {
        use std::os::unix::fs::MetadataExt;
        let same = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| Some((m.dev(), m.ino())) == self.file);
        if same {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl ControlSocket {
    /// Binds `path` with `mode` (the mode is set as the kernel creates the file). A stale socket
    /// of a dead instance is replaced; a live one is refused with `AddrInUse`.
    pub(crate) fn bind(path: &Path, mode: u32) -> io::Result<ControlSocket> {
        use std::os::unix::fs::MetadataExt;
        let listener = crate::inputs::bind::bind_unix_stream_with_mode(path, mode)?;
        let file = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Ok(ControlSocket {
            listener,
            path: path.to_owned(),
            group: mode & 0o070 != 0,
            file,
        })
    }

    /// Serves requests on a thread of its own until the process exits, sending questions to
    /// the loop on `events`. Returns the socket file, for its removal at exit.
    pub(crate) fn spawn(self, events: Sender<Event>) -> io::Result<SocketFile> {
        let file = SocketFile {
            path: self.path.clone(),
            file: self.file,
        };
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || self.serve(&events))?;
        Ok(file)
    }

    fn serve(self, events: &Sender<Event>) {
        let ours = nix::unistd::Uid::effective().as_raw();
        let busy = Arc::new(AtomicUsize::new(0));
        for conn in self.listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(CLIENT_TIMEOUT));
            let _ = conn.set_write_timeout(Some(CLIENT_TIMEOUT));
            let peer =
                nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials);
            let allowed = peer.is_ok_and(|c| c.uid() == 0 || c.uid() == ours || self.group);
            if !allowed {
                // Its request read first (bounded): closing on unread bytes would reset the
                // connection before the client could read why.
                let _ = read_request(&conn);
                let _ = conn.write_all(b"error\nnot allowed: root or the daemon's user only\n");
                continue;
            }
            // A few at once, each bounded in time: clients that send nothing hold a slot for
            // CLIENT_TIMEOUT at most, and past the slots a client is told to come back.
            if busy.fetch_add(1, Relaxed) >= MAX_CLIENTS {
                busy.fetch_sub(1, Relaxed);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
                let _ = read_request(&conn);
                let _ = conn.write_all(b"error\nbusy: too many control clients at once\n");
                continue;
            }
            let (events, slot) = (events.clone(), busy.clone());
            let spawned = std::thread::Builder::new()
                .name("control-client".into())
                .spawn(move || {
                    serve_client(conn, &events);
                    slot.fetch_sub(1, Relaxed);
                });
            if spawned.is_err() {
                busy.fetch_sub(1, Relaxed);
            }
        }
        log::error!(
            "control socket {}: no longer accepting",
            self.path.display()
        );
    }
}

/// Reads one request, asks the loop, writes the answer.
fn serve_client(mut conn: UnixStream, events: &Sender<Event>) {
    let answer = match read_request(&conn) {
        Some(request) => answer(&request, events),
        None => Err("a request is one line: status, status json or reload".into()),
    };
    let reply = match answer {
        Ok(body) => format!("ok\n{body}"),
        Err(why) => format!("error\n{why}\n"),
    };
    let _ = conn.write_all(reply.as_bytes());
}

/// The request line, if one came in time and is text.
fn read_request(conn: &UnixStream) -> Option<String> {
    let mut line = String::new();
    BufReader::new(conn.take(MAX_REQUEST))
        .read_line(&mut line)
        .ok()?;
    line.strip_suffix('\n').map(|l| l.trim().to_owned())
}

/// Asks the loop and waits for its answer.
fn answer(request: &str, events: &Sender<Event>) -> std::result::Result<String, String> {
    let gone = || "the daemon is stopping".to_string();
    match request {
        "status" | "status json" => {
            let (tx, rx) = channel();
            events
                .send(Event::Request(Request::Report(tx)))
                .map_err(|_| gone())?;
            let report = rx.recv_timeout(STATUS_WAIT).map_err(|_| gone())?;
            Ok(match request {
                "status" => report.to_text(),
                _ => report.to_json() + "\n",
            })
        }
        "reload" => {
            let (tx, rx) = channel();
            events
                .send(Event::Request(Request::Reload(tx)))
                .map_err(|_| gone())?;
            match rx.recv_timeout(RELOAD_WAIT) {
                Ok(Ok(())) => Ok("reloaded: the new configuration runs\n".into()),
                Ok(Err(why)) => Err(why),
                Err(_) => Err("no answer from the daemon in time".into()),
            }
        }
        _ => Err(format!(
            "unknown request {request:?}: status, status json or reload"
        )),
    }
}

/// What `logger --status` and `logger --reload` ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// `--status`, as text or JSON.
    Status {
        /// `--json`: the documented schema, for scripts.
        json: bool,
    },
    /// `--reload`.
    Reload,
}

/// Asks the daemon whose control socket is `path` and prints its answer. Ok only when it
/// answered `ok`; its refusal (a reload of a broken file) is an error carrying its reason.
pub(crate) fn ask(path: &Path, what: Ask) -> Result<String> {
    let unavailable = |e: io::Error| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                " (is logger running? it places its control socket there, or where \
                 control-socket says)"
            }
            io::ErrorKind::PermissionDenied => " (root or the daemon's user may ask)",
            _ => "",
        };
        Error::Unavailable(format!(
            "no answer from the daemon at {}: {e}{hint}",
            path.display()
        ))
    };
    let mut conn = UnixStream::connect(path).map_err(unavailable)?;
    let wait = match what {
        Ask::Reload => RELOAD_WAIT,
        Ask::Status { .. } => STATUS_WAIT,
    };
    conn.set_read_timeout(Some(wait + CLIENT_TIMEOUT))
        .map_err(unavailable)?;
    let request = match what {
        Ask::Status { json: false } => "status\n",
        Ask::Status { json: true } => "status json\n",
        Ask::Reload => "reload\n",
    };
    conn.write_all(request.as_bytes()).map_err(unavailable)?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).map_err(unavailable)?;
    match reply.split_once('\n') {
        Some(("ok", body)) => Ok(body.to_owned()),
        Some(("error", why)) => Err(match what {
            Ask::Reload => Error::Config(format!(
                "reload refused, the running configuration is kept: {}",
                why.trim_end()
            )),
            Ask::Status { .. } => Error::Unavailable(why.trim_end().to_owned()),
        }),
        _ => Err(Error::Unavailable(format!(
            "{}: not a logger control socket (answered {reply:?})",
            path.display()
        ))),
    }
}
