//! Getting listening sockets: binding the configured addresses ourselves, or adopting the ones a
//! service manager passed (LISTEN_FDS), before READY and before any fork.
//!
//! Local socket files get the modes of /dev/log (0666, access bounded by their directory). A stale
//! socket file from a dead instance is replaced; one a live process still serves is refused.

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    AddressFamily, SockType, SockaddrLike, SockaddrStorage, getsockname, sockopt,
};

use crate::config::{Config, InputSpec};
use crate::error::{Error, Result};
use crate::listen::{Endpoint, ListenAddr};
use crate::sys;
use syslog::message::Transport;

/// A socket ready to be served, with the input it serves.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The input as configured (or derived, for an adopted socket no input names).
    pub spec: InputSpec,
    /// The socket: of the kind `spec.listen.transport` says (a UDP or AF_UNIX datagram socket,
    /// a listening TCP or AF_UNIX stream socket); taken by the input thread that serves it.
    socket: Option<OwnedFd>,
    /// A socket file we created and must remove when we stop serving it.
    pub owned_path: Option<PathBuf>,
    /// Passed by the service manager (never closed or unlinked by a reload).
    pub activated: bool,
}

impl Listener {
    /// The address it serves.
    pub(crate) fn addr(&self) -> &ListenAddr {
        &self.spec.listen
    }

    /// The address actually bound (port 0 resolved), as a listen URL.
    pub(crate) fn bound(&self) -> String {
        let addr = self.addr();
        let resolved = addr.socket_addr().and_then(|_| {
            let fd = self.socket.as_ref()?.as_raw_fd();
            let local: SockaddrStorage = getsockname(fd).ok()?;
            let ip = local
                .as_sockaddr_in()
                .map(|a| SocketAddr::from(*a))
                .or_else(|| local.as_sockaddr_in6().map(|a| SocketAddr::from(*a)))?;
            Some(ListenAddr::inet(addr.transport, ip))
        });
        resolved.unwrap_or_else(|| addr.clone()).to_string()
    }
}

impl Listener {
    /// The socket, for the thread that serves it (once).
    pub(crate) fn take_socket(&mut self) -> io::Result<OwnedFd> {
        self.socket
            .take()
            .ok_or_else(|| io::Error::other("the socket was taken already"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = &self.owned_path {
            let _ = fs::remove_file(path);
        }
    }
}

/// Binds every configured input beside the adopted sockets (`adopt`). When sockets were
/// passed and the inputs are the built-in default, the passed sockets replace the default.
pub(crate) fn bind_all(config: &Config, activated: Vec<Listener>) -> Result<Vec<Listener>> {
    let mut listeners = activated;
    if config.inputs_are_default && !listeners.is_empty() {
        return Ok(listeners);
    }
    for spec in &config.inputs {
        if listeners
            .iter()
            .any(|l| serving(&l.spec.listen, &spec.listen))
        {
            continue;
        }
        listeners.push(bind(spec)?);
    }
    if listeners.is_empty() {
        return Err(nothing_to_serve());
    }
    Ok(listeners)
}

/// True if a socket at `socket` serves the configured `wanted`: the same kind of socket at
/// the same path, or the same port with the same address (or either the wildcard, since
/// `ListenStream=6514` binds `[::]:6514`). TCP and TLS are the same kind of socket.
pub(crate) fn serving(socket: &ListenAddr, wanted: &ListenAddr) -> bool {
    if socket.is_stream() != wanted.is_stream() {
        return false;
    }
    match (socket.socket_addr(), wanted.socket_addr()) {
        (Some(a), Some(b)) => {
            a.port() == b.port()
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        }
        (None, None) => socket.endpoint == wanted.endpoint,
        _ => false,
    }
}

/// The configuration of an adopted socket at `addr`: the input configured at its address,
/// else a plain input with the top-level limits. A socket named for a protocol serves an input
/// of that protocol only; one passed as TLS (`FileDescriptorName=tls` or `relp+tls`) needs
/// that input, to give it a certificate.
pub(crate) fn adopted_spec(addr: &ListenAddr, config: &Config) -> Result<InputSpec> {
    let configured = config.inputs.iter().find(|i| {
        serving(addr, &i.listen)
            && (addr.transport == Transport::Tcp || i.listen.transport == addr.transport)
    });
    match configured {
        Some(spec) => {
            let mut spec = spec.clone();
            spec.listen.endpoint = addr.endpoint.clone();
            Ok(spec)
        }
        None if addr.transport.is_tls() => Err(Error::Config(format!(
            "the socket passed as TLS ({addr}) has no [[input]] with listen = \"{addr}\" and \
             its tls-cert and tls-key"
        ))),
        None => Ok(InputSpec::plain(addr.clone(), &config.limits)),
    }
}

/// The error for a configuration that would serve nothing: `listen = []` without sockets
/// passed by the service manager.
pub(crate) fn nothing_to_serve() -> Error {
    Error::Config(
        "nothing to listen on: `listen` is empty and the service manager passed no sockets".into(),
    )
}

/// Binds one input's socket.
pub(crate) fn bind(spec: &InputSpec) -> Result<Listener> {
    let addr = &spec.listen;
    let fail = |source: io::Error| Error::Listen {
        address: addr.to_string(),
        source,
    };
    let limits = &spec.limits;
    let (socket, owned_path): (OwnedFd, _) = match (&addr.endpoint, addr.transport) {
        (Endpoint::Inet(a), Transport::Udp) => {
            let s = UdpSocket::bind(a).map_err(fail)?;
            size_receive_buffer(&s, addr, limits.receive_buffer).map_err(fail)?;
            (s.into(), None)
        }
        (Endpoint::Inet(a), _) => (TcpListener::bind(a).map_err(fail)?.into(), None),
        // The journal is read by its input's thread (sd-journal objects belong to one thread);
        // opened once here so that a missing libsystemd or journal fails the start, with its
        // reason, instead of an input that stops at once.
        (Endpoint::Path(_), Transport::Journal) => {
            drop(crate::sys::journal::Journal::open(limits.max_message_size).map_err(fail)?);
            let file = fs::File::open("/dev/null").map_err(fail)?;
            (file.into(), None)
        }
        (Endpoint::Path(path), Transport::Kmsg) => {
            // Opened here, before any privilege drop: reading it needs CAP_SYSLOG where
            // kernel.dmesg_restrict is set.
            use std::os::unix::fs::OpenOptionsExt;
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
                .open(path)
                .map_err(fail)?;
            (file.into(), None)
        }
        (Endpoint::Path(path), Transport::UnixStream) => {
            prepare_path(path, true).map_err(fail)?;
            let s = with_socket_umask(|| UnixListener::bind(path)).map_err(fail)?;
            (s.into(), Some(path.clone()))
        }
        (Endpoint::Path(path), _) => {
            prepare_path(path, false).map_err(fail)?;
            let s = with_socket_umask(|| UnixDatagram::bind(path)).map_err(fail)?;
            let owned = Some(path.clone());
            nix::sys::socket::setsockopt(&s, sockopt::PassCred, &true)
                .map_err(|e| fail(e.into()))?;
            size_receive_buffer(&s, addr, limits.receive_buffer).map_err(fail)?;
            (s.into(), owned)
        }
    };
    Ok(Listener {
        spec: spec.clone(),
        socket: Some(socket),
        owned_path,
        activated: false,
    })
}

/// Gives a datagram socket a receive buffer of `asked` bytes: past net.core.rmem_max when we may
/// (SO_RCVBUFFORCE needs CAP_NET_ADMIN, as journald does it), else as much as the kernel allows,
/// with a warning that says how much that is, since datagrams beyond it are lost unseen.
pub(super) fn size_receive_buffer(
    socket: &impl AsFd,
    addr: &ListenAddr,
    asked: usize,
) -> io::Result<()> {
    use nix::sys::socket::{getsockopt, setsockopt};
    if setsockopt(socket, sockopt::RcvBufForce, &asked).is_err() {
        setsockopt(socket, sockopt::RcvBuf, &asked)?;
    }
    // The kernel doubles what it is asked for, to account for its own overhead, and reports that.
    let granted = getsockopt(socket, sockopt::RcvBuf)? / 2;
    if granted < asked {
        log::warn!(
            "{addr}: receive buffer is {} KiB, not the {} KiB asked (receive-buffer): \
             net.core.rmem_max caps it without CAP_NET_ADMIN; raise that sysctl, or let \
             logger.socket bind the socket (ReceiveBuffer=)",
            granted / 1024,
            asked / 1024
        );
    }
    Ok(())
}

/// Runs `bind` with the umask that gives a new socket file mode 0666, the mode of /dev/log
/// (access is bounded by the directory). The mode is set as the kernel creates the file, so no
/// chmod by path follows that a symbolic link swapped in meanwhile could redirect.
///
/// The umask is process-wide. At start-up the process is single-threaded; during a reload the
/// only other threads are inputs and the signal thread, which create no files.
fn with_socket_umask<T>(bind: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    use nix::sys::stat::{Mode, umask};
    let previous = umask(Mode::from_bits_truncate(0o111));
    let bound = bind();
    umask(previous);
    bound
}

/// Binds a unix stream socket at `path` whose file gets `mode` as the kernel creates it (no
/// chmod by path); a stale socket is replaced, a live one refused (`AddrInUse`). For the control
/// socket.
pub(crate) fn bind_unix_stream_with_mode(path: &Path, mode: u32) -> io::Result<UnixListener> {
    use nix::sys::stat::{Mode, umask};
    prepare_path(path, true)?;
    let previous = umask(Mode::from_bits_truncate(!mode & 0o777));
    let bound = UnixListener::bind(path);
    umask(previous);
    bound
}

/// Makes room for a socket file: creates the directory, replaces a stale socket, refuses a live
/// one or a file that is not a socket.
fn prepare_path(path: &Path, stream: bool) -> io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode_0755()
            .create(dir)?;
    }
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        ));
    }
    let live = if stream {
        UnixStream::connect(path).is_ok()
    } else {
        UnixDatagram::unbound()
            .and_then(|s| s.connect(path))
            .is_ok()
    };
    if live {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process is serving this socket",
        ));
    }
    fs::remove_file(path)
}

trait Mode0755 {
    fn mode_0755(&mut self) -> &mut Self;
}

impl Mode0755 for fs::DirBuilder {
    fn mode_0755(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o755)
    }
}

/// Adopts the sockets passed by the service manager (sd_listen_fds(3)), each with the
/// configuration of the input at its address (see [`adopted_spec`]).
pub(crate) fn adopt(fds: Vec<(RawFd, String)>, config: &Config) -> Result<Vec<Listener>> {
    fds.into_iter()
        .map(|(fd, name)| {
            let fail = |source: io::Error| Error::Listen {
                address: format!("passed descriptor {fd} ({name})"),
                source,
            };
            let socket = sys::adopt_fd(fd).map_err(fail)?;
            let addr = adopted_address(&socket, &name).map_err(fail)?;
            Ok(Listener {
                spec: adopted_spec(&addr, config)?,
                socket: Some(socket),
                owned_path: None,
                activated: true,
            })
        })
        .collect()
}

/// What a passed socket is, from the socket itself; a TCP socket is TLS, RELP or RELP under
/// TLS if the manager named it so (`FileDescriptorName=tls`, `relp`, `relp+tls`, or a name
/// starting with one of them and `-`).
fn adopted_address(fd: &OwnedFd, name: &str) -> io::Result<ListenAddr> {
    let kind = nix::sys::socket::getsockopt(&fd.as_fd(), sockopt::SockType)?;
    let local: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    let unsupported = || io::Error::new(io::ErrorKind::Unsupported, "unsupported socket type");
    let inet = local
        .as_sockaddr_in()
        .map(|a| SocketAddr::from(*a))
        .or_else(|| local.as_sockaddr_in6().map(|a| SocketAddr::from(*a)));
    let path = || {
        local
            .as_unix_addr()
            .and_then(|u| u.path())
            .map(Path::to_owned)
            .ok_or_else(unsupported)
    };
    let named = |scheme: &str| {
        name == scheme
            || name
                .strip_prefix(scheme)
                .is_some_and(|r| r.starts_with('-'))
    };
    let stream = if named("journal-remote+https") {
        Transport::JournalRemoteTls
    } else if named("journal-remote") {
        Transport::JournalRemote
    } else if named("relp+tls") {
        Transport::RelpTls
    } else if named("relp") {
        Transport::Relp
    } else if named("tls") {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let addr = match (local.family(), kind) {
        (Some(AddressFamily::Inet | AddressFamily::Inet6), SockType::Datagram) => {
            ListenAddr::inet(Transport::Udp, inet.ok_or_else(unsupported)?)
        }
        (Some(AddressFamily::Inet | AddressFamily::Inet6), SockType::Stream) => {
            ListenAddr::inet(stream, inet.ok_or_else(unsupported)?)
        }
        (Some(AddressFamily::Unix), SockType::Datagram) => {
            nix::sys::socket::setsockopt(fd, sockopt::PassCred, &true)?;
            ListenAddr::path(Transport::UnixDatagram, path()?)
        }
        (Some(AddressFamily::Unix), SockType::Stream) => {
            ListenAddr::path(Transport::UnixStream, path()?)
        }
        _ => return Err(unsupported()),
    };
    if stream != Transport::Tcp && addr.transport != stream {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("named for {}, but not a TCP socket", stream.name()),
        ));
    }
    Ok(addr)
}
