//! Getting listening sockets: binding the configured addresses ourselves, or adopting the ones a
//! service manager passed (LISTEN_FDS), before READY and before any fork.
//!
//! Local socket files get the modes of /dev/log (0666, access bounded by their directory). A stale
//! socket file from a dead instance is replaced; one a live process still serves is refused.

use std::fs;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{AddressFamily, SockType, SockaddrLike, SockaddrStorage, sockopt};

use crate::config::{Config, Limits};
use crate::error::{Error, Result};
use crate::listen::ListenAddr;
use crate::sys;

/// A bound or adopted socket.
#[derive(Debug)]
pub enum Socket {
    /// UDP.
    Udp(UdpSocket),
    /// AF_UNIX datagram.
    UnixDatagram(UnixDatagram),
    /// TCP listener.
    Tcp(TcpListener),
    /// AF_UNIX stream listener.
    UnixStream(UnixListener),
}

/// A socket ready to be served, with what it is.
#[derive(Debug)]
pub struct Listener {
    /// The address as configured (or derived, for an adopted socket).
    pub addr: ListenAddr,
    /// The socket.
    pub socket: Socket,
    /// A socket file we created and must remove when we stop serving it.
    pub owned_path: Option<PathBuf>,
    /// Passed by the service manager (never closed or unlinked by a reload).
    pub activated: bool,
}

impl Listener {
    /// The address actually bound (port 0 resolved), as a listen URL.
    pub fn bound(&self) -> String {
        let resolved = match &self.socket {
            Socket::Udp(s) => s.local_addr().ok().map(ListenAddr::Udp),
            Socket::Tcp(s) => s.local_addr().ok().map(ListenAddr::Tcp),
            _ => None,
        };
        resolved.unwrap_or_else(|| self.addr.clone()).to_string()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = &self.owned_path {
            let _ = fs::remove_file(path);
        }
    }
}

/// Binds every configured address, adopting activated sockets first. When sockets were passed
/// and the listen list is the built-in default, the passed sockets replace the default.
pub fn bind_all(config: &Config, activated: Vec<Listener>) -> Result<Vec<Listener>> {
    let mut listeners = activated;
    if config.listen_is_default && !listeners.is_empty() {
        return Ok(listeners);
    }
    for addr in &config.listen {
        if listeners.iter().any(|l| l.addr == *addr) {
            continue;
        }
        listeners.push(bind(addr, &config.limits)?);
    }
    if listeners.is_empty() {
        return Err(nothing_to_serve());
    }
    Ok(listeners)
}

/// The error for a configuration that would serve nothing: `listen = []` without sockets
/// passed by the service manager.
pub fn nothing_to_serve() -> Error {
    Error::Config(
        "nothing to listen on: `listen` is empty and the service manager passed no sockets".into(),
    )
}

/// Binds one address.
pub fn bind(addr: &ListenAddr, limits: &Limits) -> Result<Listener> {
    let fail = |source: io::Error| Error::Listen {
        address: addr.to_string(),
        source,
    };
    let (socket, owned_path) = match addr {
        ListenAddr::Udp(a) => {
            let s = UdpSocket::bind(a).map_err(fail)?;
            size_receive_buffer(&s, addr, limits.receive_buffer).map_err(fail)?;
            (Socket::Udp(s), None)
        }
        ListenAddr::Tcp(a) => (Socket::Tcp(TcpListener::bind(a).map_err(fail)?), None),
        ListenAddr::UnixDatagram(path) => {
            prepare_path(path, false).map_err(fail)?;
            let s = with_socket_umask(|| UnixDatagram::bind(path)).map_err(fail)?;
            let owned = Some(path.clone());
            nix::sys::socket::setsockopt(&s, sockopt::PassCred, &true)
                .map_err(|e| fail(e.into()))?;
            size_receive_buffer(&s, addr, limits.receive_buffer).map_err(fail)?;
            (Socket::UnixDatagram(s), owned)
        }
        ListenAddr::UnixStream(path) => {
            prepare_path(path, true).map_err(fail)?;
            let s = with_socket_umask(|| UnixListener::bind(path)).map_err(fail)?;
            (Socket::UnixStream(s), Some(path.clone()))
        }
    };
    Ok(Listener {
        addr: addr.clone(),
        socket,
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

/// Adopts the sockets passed by the service manager (sd_listen_fds(3)).
pub fn adopt(fds: Vec<(RawFd, String)>) -> Result<Vec<Listener>> {
    fds.into_iter()
        .map(|(fd, name)| {
            let fail = |source: io::Error| Error::Listen {
                address: format!("passed descriptor {fd} ({name})"),
                source,
            };
            let owned = sys::adopt_fd(fd).map_err(fail)?;
            adopt_one(owned).map_err(fail)
        })
        .collect()
}

fn adopt_one(fd: OwnedFd) -> io::Result<Listener> {
    let kind = nix::sys::socket::getsockopt(&fd.as_fd(), sockopt::SockType)?;
    let local: SockaddrStorage =
        nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
    let unsupported = || io::Error::new(io::ErrorKind::Unsupported, "unsupported socket type");
    let (addr, socket) = match (local.family(), kind) {
        (Some(AddressFamily::Inet | AddressFamily::Inet6), SockType::Datagram) => {
            let s = UdpSocket::from(fd);
            (ListenAddr::Udp(s.local_addr()?), Socket::Udp(s))
        }
        (Some(AddressFamily::Inet | AddressFamily::Inet6), SockType::Stream) => {
            let s = TcpListener::from(fd);
            (ListenAddr::Tcp(s.local_addr()?), Socket::Tcp(s))
        }
        (Some(AddressFamily::Unix), SockType::Datagram) => {
            let s = UnixDatagram::from(fd);
            nix::sys::socket::setsockopt(&s, sockopt::PassCred, &true)?;
            let path = s.local_addr()?.as_pathname().map(Path::to_owned);
            (
                ListenAddr::UnixDatagram(path.ok_or_else(unsupported)?),
                Socket::UnixDatagram(s),
            )
        }
        (Some(AddressFamily::Unix), SockType::Stream) => {
            let s = UnixListener::from(fd);
            let path = s.local_addr()?.as_pathname().map(Path::to_owned);
            (
                ListenAddr::UnixStream(path.ok_or_else(unsupported)?),
                Socket::UnixStream(s),
            )
        }
        _ => return Err(unsupported()),
    };
    Ok(Listener {
        addr,
        socket,
        owned_path: None,
        activated: true,
    })
}
