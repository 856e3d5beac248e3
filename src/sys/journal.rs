//! libsystemd's sd-journal(3), loaded with dlopen(3) when a journal input starts: the binary
//! keeps starting on hosts without libsystemd, and only a configuration that reads the journal
//! needs it. The journal file format's own documentation asks readers to use this library
//! (rotation, vacuuming, interleaving of files and cursors are its business).
//!
//! [`Journal`] is the one safe handle: opened, used and closed on one thread (sd-journal objects
//! are not thread-safe; the handle is neither `Send` nor `Sync`).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::sync::OnceLock;

/// SD_JOURNAL_LOCAL_ONLY: this machine's journal files only.
const LOCAL_ONLY: c_int = 1;

type Handle = *mut c_void;

type OpenFn = unsafe extern "C" fn(*mut Handle, c_int) -> c_int;
type VoidFn = unsafe extern "C" fn(Handle);
type IntFn = unsafe extern "C" fn(Handle) -> c_int;
type CursorFn = unsafe extern "C" fn(Handle, *const c_char) -> c_int;
type GetCursorFn = unsafe extern "C" fn(Handle, *mut *mut c_char) -> c_int;
type RealtimeFn = unsafe extern "C" fn(Handle, *mut u64) -> c_int;
type EnumerateFn = unsafe extern "C" fn(Handle, *mut *const c_void, *mut usize) -> c_int;
type ThresholdFn = unsafe extern "C" fn(Handle, usize) -> c_int;
type MatchFn = unsafe extern "C" fn(Handle, *const c_void, usize) -> c_int;

/// The functions used, resolved once.
struct Lib {
    open: OpenFn,
    close: VoidFn,
    next: IntFn,
    seek_head: IntFn,
    seek_cursor: CursorFn,
    test_cursor: CursorFn,
    get_cursor: GetCursorFn,
    get_realtime_usec: RealtimeFn,
    restart_data: VoidFn,
    enumerate_data: EnumerateFn,
    set_data_threshold: ThresholdFn,
    get_fd: IntFn,
    process: IntFn,
    add_match: MatchFn,
    add_disjunction: IntFn,
}

fn lib() -> io::Result<&'static Lib> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(load)
        .as_ref()
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.clone()))
}

fn load() -> Result<Lib, String> {
    let name = c"libsystemd.so.0";
    // SAFETY: dlopen with a valid NUL-terminated name; the handle is never closed, so every
    // symbol resolved from it stays valid for the life of the process.
    let handle = unsafe { nix::libc::dlopen(name.as_ptr(), nix::libc::RTLD_NOW) };
    if handle.is_null() {
        return Err(
            "cannot load libsystemd.so.0 (Debian package libsystemd0), which reading the \
             journal needs"
                .into(),
        );
    }
    macro_rules! symbol {
        ($name:literal, $type:ty) => {{
            let name = CStr::from_bytes_with_nul(concat!($name, "\0").as_bytes())
                .map_err(|e| e.to_string())?;
            // SAFETY: `handle` is a live dlopen handle and `name` NUL-terminated.
            let f = unsafe { nix::libc::dlsym(handle, name.as_ptr()) };
            if f.is_null() {
                return Err(format!("libsystemd.so.0 lacks {}", $name));
            }
            // SAFETY: the symbol is libsystemd's function of that name, whose C signature
            // (sd-journal(3)) is the one of the field this value is assigned to.
            unsafe { std::mem::transmute::<*mut c_void, $type>(f) }
        }};
    }
    Ok(Lib {
        open: symbol!("sd_journal_open", OpenFn),
        close: symbol!("sd_journal_close", VoidFn),
        next: symbol!("sd_journal_next", IntFn),
        seek_head: symbol!("sd_journal_seek_head", IntFn),
        seek_cursor: symbol!("sd_journal_seek_cursor", CursorFn),
        test_cursor: symbol!("sd_journal_test_cursor", CursorFn),
        get_cursor: symbol!("sd_journal_get_cursor", GetCursorFn),
        get_realtime_usec: symbol!("sd_journal_get_realtime_usec", RealtimeFn),
        restart_data: symbol!("sd_journal_restart_data", VoidFn),
        enumerate_data: symbol!("sd_journal_enumerate_data", EnumerateFn),
        set_data_threshold: symbol!("sd_journal_set_data_threshold", ThresholdFn),
        get_fd: symbol!("sd_journal_get_fd", IntFn),
        process: symbol!("sd_journal_process", IntFn),
        add_match: symbol!("sd_journal_add_match", MatchFn),
        add_disjunction: symbol!("sd_journal_add_disjunction", IntFn),
    })
}

/// A negative errno from libsystemd as an error.
fn check(r: c_int) -> io::Result<c_int> {
    match r {
        r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
        r => Ok(r),
    }
}

/// An open journal, read on the thread that opened it.
pub(crate) struct Journal {
    lib: &'static Lib,
    handle: Handle,
    /// sd-journal objects belong to one thread.
    _not_send: PhantomData<*mut ()>,
}

impl Journal {
    /// Opens this machine's journal (every file the process may read); each field read is cut
    /// at `max_field` bytes (sd_journal_set_data_threshold(3)), so that an entry costs at most
    /// its fields' count times that, whatever a local writer put in it.
    pub(crate) fn open(max_field: usize) -> io::Result<Journal> {
        let lib = lib()?;
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: `handle` is a valid place for the new object's pointer.
        check(unsafe { (lib.open)(&mut handle, LOCAL_ONLY) })?;
        let journal = Journal {
            lib,
            handle,
            _not_send: PhantomData,
        };
        // SAFETY: a live handle; the threshold is a plain number.
        check(unsafe { (lib.set_data_threshold)(journal.handle, max_field.max(1)) })?;
        Ok(journal)
    }

    /// Adds `FIELD=value` to the matches (sd_journal_add_match(3)).
    pub(crate) fn add_match(&mut self, pair: &[u8]) -> io::Result<()> {
        // SAFETY: a live handle; the data is valid for its length and copied by the call.
        check(unsafe { (self.lib.add_match)(self.handle, pair.as_ptr().cast(), pair.len()) })
            .map(|_| ())
    }

    /// Starts a new group of matches, ORed with the previous (journalctl's `+`).
    pub(crate) fn add_disjunction(&mut self) -> io::Result<()> {
        // SAFETY: a live handle.
        check(unsafe { (self.lib.add_disjunction)(self.handle) }).map(|_| ())
    }

    /// Before the first entry.
    pub(crate) fn seek_head(&mut self) -> io::Result<()> {
        // SAFETY: a live handle.
        check(unsafe { (self.lib.seek_head)(self.handle) }).map(|_| ())
    }

    /// At the entry `cursor` names, or where it would be if it is gone; `next_entry` then moves
    /// onto it (or the one after where it was).
    pub(crate) fn seek_cursor(&mut self, cursor: &str) -> io::Result<()> {
        let c = CString::new(cursor).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // SAFETY: a live handle and a NUL-terminated string the call only reads.
        check(unsafe { (self.lib.seek_cursor)(self.handle, c.as_ptr()) }).map(|_| ())
    }

    /// True if the current entry is the one `cursor` names.
    pub(crate) fn test_cursor(&mut self, cursor: &str) -> io::Result<bool> {
        let c = CString::new(cursor).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // SAFETY: as in `seek_cursor`.
        check(unsafe { (self.lib.test_cursor)(self.handle, c.as_ptr()) }).map(|r| r > 0)
    }

    /// Moves to the next entry; false at the end.
    pub(crate) fn next_entry(&mut self) -> io::Result<bool> {
        // SAFETY: a live handle.
        check(unsafe { (self.lib.next)(self.handle) }).map(|r| r > 0)
    }

    /// The current entry's cursor.
    pub(crate) fn cursor(&mut self) -> io::Result<String> {
        self.cursor_with(0)
    }

    /// The current entry's cursor, in a string with room for `spare` more bytes.
    pub(crate) fn cursor_with(&mut self, spare: usize) -> io::Result<String> {
        let mut c: *mut c_char = std::ptr::null_mut();
        // SAFETY: a live handle and a valid place for the string's pointer.
        check(unsafe { (self.lib.get_cursor)(self.handle, &mut c) })?;
        // SAFETY: on success `c` is a NUL-terminated string malloc'ed for us.
        let bytes = unsafe { CStr::from_ptr(c) }.to_bytes();
        let mut text = String::with_capacity(bytes.len() + spare);
        text.push_str(&String::from_utf8_lossy(bytes));
        // SAFETY: allocated by libsystemd with malloc; ours to free, once.
        unsafe { nix::libc::free(c.cast()) };
        Ok(text)
    }

    /// The current entry's wall-clock time, in microseconds since the epoch.
    pub(crate) fn realtime_usec(&mut self) -> io::Result<u64> {
        let mut usec = 0u64;
        // SAFETY: a live handle and a valid place for the value.
        check(unsafe { (self.lib.get_realtime_usec)(self.handle, &mut usec) })?;
        Ok(usec)
    }

    /// Hands each `FIELD=value` of the current entry to `each`, binary values included.
    pub(crate) fn for_each_field(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        // SAFETY: a live handle.
        unsafe { (self.lib.restart_data)(self.handle) };
        loop {
            let mut data: *const c_void = std::ptr::null();
            let mut len = 0usize;
            // SAFETY: a live handle and valid places for the pointer and length.
            let r = check(unsafe { (self.lib.enumerate_data)(self.handle, &mut data, &mut len) });
            match r {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    // SAFETY: on success `data` points at `len` bytes that stay valid until the
                    // next call on this handle; they are copied by `each` before that.
                    let field = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
                    each(field);
                }
                // A field too damaged to read (EBADMSG): the others are still worth having.
                Err(e) if e.raw_os_error() == Some(nix::libc::EBADMSG) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The descriptor that becomes readable when the journal changes (inotify).
    pub(crate) fn fd(&mut self) -> io::Result<RawFd> {
        // SAFETY: a live handle.
        check(unsafe { (self.lib.get_fd)(self.handle) })
    }

    /// After the descriptor was readable: takes in new and rotated files.
    pub(crate) fn process(&mut self) -> io::Result<c_int> {
        // SAFETY: a live handle.
        check(unsafe { (self.lib.process)(self.handle) })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: the handle is live and closed exactly once, here.
        unsafe { (self.lib.close)(self.handle) };
    }
}
