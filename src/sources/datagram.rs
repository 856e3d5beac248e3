//! Datagram inputs: UDP and AF_UNIX datagram sockets (what syslog(3) writes to).
//!
//! One datagram is one message. A datagram longer than max-message-size is cut to it, marked
//! truncated and counted. On AF_UNIX the kernel's SCM_CREDENTIALS give the sender's pid/uid/gid.

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::time::SystemTime;

use mio::{Events, Interest};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg};

use super::{BATCH, Ctx, Listener, SOCKET, Socket};
use crate::message::{Credentials, Origin, Transport};
use crate::parse::parse;
use crate::stats::Stats;

enum Datagram {
    Udp(mio::net::UdpSocket),
    Unix(mio::net::UnixDatagram),
}

pub(super) fn run(ctx: Ctx, mut poll: mio::Poll, mut listener: Listener) {
    let mut socket = match take_socket(&mut listener) {
        Ok(s) => s,
        Err(e) => {
            log::error!("input {}: {e}", listener.addr);
            return ctx.finish();
        }
    };
    let registered = match &mut socket {
        Datagram::Udp(s) => poll.registry().register(s, SOCKET, Interest::READABLE),
        Datagram::Unix(s) => poll.registry().register(s, SOCKET, Interest::READABLE),
    };
    if let Err(e) = registered {
        log::error!("input {}: cannot poll the socket: {e}", listener.addr);
        return ctx.finish();
    }
    let max = ctx.shared.limits.max_message_size;
    let mut buf = vec![0u8; max + 1];
    let mut batch = Vec::with_capacity(BATCH);
    let mut events = Events::with_capacity(8);
    loop {
        if let Err(e) = poll.poll(&mut events, None)
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::error!("input {}: poll failed: {e}", listener.addr);
            break;
        }
        // Read until the kernel queue is empty (mio is edge-triggered); on stop this is the drain.
        let stopping = ctx.stopping();
        loop {
            let received = match &socket {
                Datagram::Udp(s) => s.recv_from(&mut buf).map(|(n, peer)| (n, origin_udp(peer))),
                Datagram::Unix(s) => recv_unix(s, &mut buf),
            };
            match received {
                Ok((0, _)) => {}
                Ok((n, origin)) => {
                    let truncated = n > max;
                    let stats = &ctx.shared.stats;
                    Stats::add(&stats.received, 1);
                    if truncated {
                        Stats::add(&stats.truncated, 1);
                    }
                    batch.push(parse(
                        &buf[..n.min(max)],
                        origin,
                        SystemTime::now(),
                        truncated,
                    ));
                    if batch.len() == BATCH && !ctx.send(&mut batch) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    Stats::add(&ctx.shared.stats.read_errors, 1);
                    log::warn!("input {}: receive failed: {e}", listener.addr);
                    break;
                }
            }
        }
        if !ctx.send(&mut batch) {
            return;
        }
        if stopping {
            break;
        }
    }
    drop(socket);
    drop(listener);
    ctx.finish();
}

fn take_socket(listener: &mut Listener) -> io::Result<Datagram> {
    let placeholder = Socket::UnixDatagram(std::os::unix::net::UnixDatagram::unbound()?);
    match std::mem::replace(&mut listener.socket, placeholder) {
        Socket::Udp(s) => {
            s.set_nonblocking(true)?;
            Ok(Datagram::Udp(mio::net::UdpSocket::from_std(s)))
        }
        Socket::UnixDatagram(s) => {
            s.set_nonblocking(true)?;
            Ok(Datagram::Unix(mio::net::UnixDatagram::from_std(s)))
        }
        _ => Err(io::Error::other("not a datagram socket")),
    }
}

fn origin_udp(peer: std::net::SocketAddr) -> Origin {
    Origin {
        transport: Transport::Udp,
        peer: Some(peer),
        credentials: None,
    }
}

/// Receives one datagram with the sender's credentials. Returns the datagram's full length, which
/// exceeds the buffer when the kernel cut it.
fn recv_unix(s: &mio::net::UnixDatagram, buf: &mut [u8]) -> io::Result<(usize, Origin)> {
    let mut cmsg = nix::cmsg_space!(UnixCredentials);
    let buf_len = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut credentials = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmCredentials(cred) = c {
                credentials = Some(Credentials {
                    pid: cred.pid(),
                    uid: cred.uid(),
                    gid: cred.gid(),
                });
            }
        }
    }
    let len = if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        buf_len.max(msg.bytes) + 1
    } else {
        msg.bytes
    };
    Ok((
        len,
        Origin {
            transport: Transport::UnixDatagram,
            peer: None,
            credentials,
        },
    ))
}
