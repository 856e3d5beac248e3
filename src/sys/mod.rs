//! The only module allowed to use `unsafe`: process-wide operations whose safety depends on the
//! process being single-threaded, adopting raw descriptors handed to us by a parent, buffers
//! mapped straight from the kernel, the one socket query the standard library lacks
//! (SIOCOUTQ), the C library's time zone (`localtime_r`), and libsystemd's sd-journal, loaded
//! with dlopen ([`journal`]).
//!
//! Every function states the invariant it relies on; every `unsafe` block argues it in a
//! `// SAFETY:` comment. The rest of the crate is `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

pub(crate) mod journal;

use std::ffi::OsStr;
use std::io;
use std::num::NonZeroUsize;
use std::ops::{Deref, DerefMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::unistd::{ForkResult, Pid};

/// True if the process has exactly one thread, read from /proc/self/status. Without /proc
/// there is no way to know, and the error says so.
pub(crate) fn is_single_threaded() -> io::Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read /proc/self/status ({e}); logger needs /proc mounted"),
        )
    })?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .is_some_and(|n| n.trim() == "1"))
}

/// Removes environment variables so that nothing we start inherits them.
///
/// Refuses unless the process is single-threaded (checked): `std::env::remove_var` is unsafe
/// because another thread could read the environment at the same time.
pub(crate) fn unset_env<K: AsRef<OsStr>>(keys: &[K]) -> io::Result<()> {
    if !is_single_threaded()? {
        return Err(io::Error::other(
            "refusing to change the environment: the process already has threads",
        ));
    }
    for key in keys {
        // SAFETY: checked just above: no other thread exists that could read or write the
        // environment concurrently, and this thread starts none in between.
        unsafe { std::env::remove_var(key) };
    }
    Ok(())
}

/// Takes ownership of a descriptor inherited from our parent (LISTEN_FDS, --notify-fd).
///
/// Fails if `fd` is not open. The caller must call this at most once per descriptor number and
/// must not otherwise use `fd`: the returned `OwnedFd` closes it on drop. Marks it close-on-exec.
pub(crate) fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(nix::libc::EBADF));
    }
    // SAFETY: `fd` is only borrowed for the duration of this fcntl call; an invalid descriptor
    // makes fcntl fail with EBADF, which we report, and no memory is touched.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(borrowed, FcntlArg::F_GETFD).map_err(io::Error::from)?;
    let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
    fcntl(borrowed, FcntlArg::F_SETFD(flags)).map_err(io::Error::from)?;
    // SAFETY: fcntl proved `fd` is open; the caller's contract says nothing else owns it, so the
    // OwnedFd is its single owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Which side of a `fork` we are on.
pub(crate) enum Forked {
    /// The original process; the child's pid.
    Parent(Pid),
    /// The new process.
    Child,
}

/// `fork(2)`. Refuses unless the process is single-threaded.
pub(crate) fn fork() -> io::Result<Forked> {
    if !is_single_threaded()? {
        return Err(io::Error::other(
            "refusing to fork: the process already has threads",
        ));
    }
    // SAFETY: the process is single-threaded (checked above), so the child cannot inherit a lock
    // held by another thread; after the fork both sides continue in ordinary Rust code.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// Ends the current process at once, without running destructors or atexit handlers: what the
/// intermediate process of a double fork must do so that it does not flush or unlink anything
/// that belongs to the daemon.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions; it terminates the process without returning.
    unsafe { nix::libc::_exit(code) }
}

/// Resets every catchable signal to its default action (daemon(7) step 3), except SIGPIPE, which
/// stays ignored as the Rust runtime set it: a write to a closed pipe or socket must be an error we
/// handle, not a death.
pub(crate) fn reset_signal_handlers() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            continue;
        }
        // SAFETY: installing SIG_DFL registers no Rust handler, so no handler can run with
        // broken invariants; failures (for signals that cannot be changed) are harmless.
        let _ = unsafe { sigaction(signal, &default) };
    }
    // Real-time signals are not in nix's `Signal`; glibc refuses the two it reserves (EINVAL).
    for signo in nix::libc::SIGRTMIN()..=nix::libc::SIGRTMAX() {
        // SAFETY: as above, SIG_DFL installs no handler; the return value only reports signals
        // that cannot be changed.
        unsafe { nix::libc::signal(signo, nix::libc::SIG_DFL) };
    }
}

/// Bytes written to a TCP socket that its peer's TCP has not acknowledged yet (SIOCOUTQ: the
/// kernel's `write_seq - snd_una`, still answered after the connection was reset): what a
/// connection that breaks now has not delivered.
pub(crate) fn unacknowledged_bytes(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut n: nix::libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ on Linux) writes one int through its pointer argument, which
    // points at `n`, alive for the call; the descriptor is borrowed, so it is open.
    let r = unsafe { nix::libc::ioctl(socket.as_raw_fd(), nix::libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Datagrams the kernel dropped for a socket since it was made (SO_MEMINFO's
/// `SK_MEMINFO_DROPS`: a full receive queue, a failed filter).
pub(crate) fn socket_drops(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    // The kernel copies as many of its counters as fit: the first nine, up to DROPS.
    let mut info = [0u32; nix::libc::SK_MEMINFO_DROPS as usize + 1];
    let mut len = std::mem::size_of_val(&info) as nix::libc::socklen_t;
    // SAFETY: SO_MEMINFO writes at most `len` bytes (the kernel's SK_MEMINFO_VARS u32s) into
    // `info`, which holds that many, and stores the length written in `len`; both live for the
    // call; the descriptor is borrowed, so it is open.
    let r = unsafe {
        nix::libc::getsockopt(
            socket.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info[nix::libc::SK_MEMINFO_DROPS as usize])
}

/// Closes every descriptor above 2 except those in `keep` (daemon(7) step 1).
///
/// Must run before the process opens anything of its own: it closes descriptors that no Rust value
/// owns (inherited from the launcher), and would close owned ones too.
pub(crate) fn close_descriptors_above_stderr(keep: &[RawFd]) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    // Collect first: the directory handle itself is one of the descriptors.
    let fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // Closing the read_dir handle (already dropped) or a stale number fails with EBADF,
            // which is harmless.
            let _ = nix::unistd::close(fd);
        }
    }
}

/// A zero-filled buffer mapped from the kernel (anonymous, private), for receive buffers sized
/// for the largest message. A page costs memory only once something is written to it, so a
/// 64 KiB buffer that only ever holds short messages keeps a page or two resident. `vec![0; n]`
/// cannot promise that: glibc's calloc clears a chunk it takes from a thread's arena, touching
/// every page before the first byte arrives.
pub(crate) struct Pages {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: `Pages` owns its mapping exclusively (like a `Box<[u8]>`); nothing else holds the
// address, so moving it to another thread or sharing `&Pages` is as safe as for a boxed slice.
unsafe impl Send for Pages {}
// SAFETY: as above; `&Pages` only gives out `&[u8]`.
unsafe impl Sync for Pages {}

impl Pages {
    /// Maps `len` (at least 1) zeroed bytes.
    pub(crate) fn zeroed(len: usize) -> io::Result<Pages> {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        let len = len.max(1);
        let length = NonZeroUsize::new(len).expect("len is at least 1");
        // SAFETY: a new private anonymous mapping at an address the kernel chooses overlaps
        // nothing that exists; it is readable, writable and zero-filled, and `Pages` is its
        // only owner until `drop` unmaps it.
        let start = unsafe {
            mmap_anonymous(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Pages {
            start: start.cast(),
            len,
        })
    }
}

impl Deref for Pages {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `start` points to `len` readable, initialised (zero-filled by the kernel) bytes
        // that stay mapped for as long as `self` lives, and `&self` forbids writes meanwhile.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl DerefMut for Pages {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

/// The local time zone's offset from UTC at `unix_secs`, in seconds east, as the C library's
/// time zone (TZ, else /etc/localtime) has it; 0 if the time cannot be converted.
pub(crate) fn local_utc_offset(unix_secs: i64) -> i32 {
    let t: nix::libc::time_t = unix_secs;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct (its one pointer,
    // tm_zone, may be null); localtime_r only writes it.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call and not shared. localtime_r is the
    // thread-safe form; it reads TZ from the environment, which this process changes only
    // while it is single-threaded (`unset_env` checks).
    let converted = unsafe { nix::libc::localtime_r(&t, &mut tm) };
    if converted.is_null() {
        return 0;
    }
    i32::try_from(tm.tm_gmtoff).unwrap_or(0)
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `zeroed` with exactly this address and length, and no
        // reference into it can outlive `self`.
        let _ = unsafe { nix::sys::mman::munmap(self.start.cast(), self.len) };
    }
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pages({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::Pages;

    #[test]
    fn pages_are_zeroed_writable_and_sized() {
        let mut p = Pages::zeroed(70_000).unwrap();
        assert_eq!(p.len(), 70_000);
        assert!(p.iter().all(|&b| b == 0));
        p[69_999] = 7;
        p[0] = 1;
        assert_eq!((p[0], p[69_999]), (1, 7));
        let moved = std::thread::spawn(move || p[69_999]).join().unwrap();
        assert_eq!(moved, 7);
    }
}
