//! A file output whose path is a template (`file:/var/log/remote/{hostname}/{program}.log`):
//! one file per rendered path, each with its own pending lines.
//!
//! Directories under the fixed base are created mode 0750 and every component is opened with
//! O_NOFOLLOW relative to its parent's descriptor, so a link planted anywhere under the base
//! (by a local user who can write there) is refused, never followed; the file itself gets the
//! same checks as any output file (`super::check_log_file`). At most [`MAX_OPEN_FILES`] files
//! stay open; the one used least recently is closed to make room (its pending lines stay).
//! SIGHUP closes them all: each is reopened, by path, at its next line.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, mkdirat};

use crate::template::Template;
use syslog::message::Message;

use super::WriteOut;

/// Files a templated output keeps open at most.
pub(super) const MAX_OPEN_FILES: usize = 256;

/// Lines waiting for one rendered path.
struct Pending {
    file: Option<File>,
    text: Vec<u8>,
    messages: usize,
    /// When it was last written (a counter), for closing the least recently used.
    used: u64,
}

/// The output.
pub(super) struct Templated {
    template: Template,
    /// The fixed base directory (created at start if missing).
    base: File,
    /// Created by us at start: it may be given to `--user`.
    base_created: bool,
    files: HashMap<Vec<String>, Pending>,
    open: usize,
    clock: u64,
    bytes: usize,
    messages: usize,
}

impl Templated {
    /// Opens (creating if needed) the template's fixed base directory.
    pub(super) fn open(template: Template) -> io::Result<Templated> {
        let base_created = !template.base().exists();
        if base_created {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(template.base())?;
        }
        let base = File::open(template.base())?;
        if !base.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the fixed part of the path is not a directory",
            ));
        }
        Ok(Templated {
            template,
            base,
            base_created,
            files: HashMap::new(),
            open: 0,
            clock: 0,
            bytes: 0,
            messages: 0,
        })
    }

    /// Adds one line, written by `format` into the buffer of the file `key` names (a rendered
    /// path).
    pub(super) fn accept(&mut self, key: Vec<String>, format: impl FnOnce(&mut Vec<u8>)) {
        let pending = self.files.entry(key).or_insert_with(|| Pending {
            file: None,
            text: Vec::new(),
            messages: 0,
            used: 0,
        });
        let before = pending.text.len();
        format(&mut pending.text);
        pending.messages += 1;
        self.bytes += pending.text.len() - before;
        self.messages += 1;
    }

    /// Bytes pending in all files.
    pub(super) fn backlog_bytes(&self) -> usize {
        self.bytes
    }

    /// Messages pending in all files.
    pub(super) fn backlog_messages(&self) -> usize {
        self.messages
    }

    /// Writes every file's pending lines; a file that fails keeps its lines (the error is
    /// reported) and the others go on.
    pub(super) fn write_out(&mut self, out: &mut WriteOut) {
        self.clock += 1;
        let keys: Vec<Vec<String>> = self
            .files
            .iter()
            .filter(|(_, p)| !p.text.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        // One log line per write-out for refused paths, however many there are.
        let mut refused = false;
        for key in keys {
            if self.files[&key].file.is_none() {
                match self.open_file(&key) {
                    Ok(file) => {
                        self.make_room();
                        self.open += 1;
                        self.files.get_mut(&key).expect("listed above").file = Some(file);
                    }
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                        // Refused for good (a link, a directory, a file with other links):
                        // retrying cannot help, and the lines must not hold the others back.
                        if !refused {
                            log::error!("{}: {e}; its lines are rejected", self.path_of(&key));
                            refused = true;
                        }
                        let pending = self.files.remove(&key).expect("listed above");
                        self.messages -= pending.messages;
                        self.bytes -= pending.text.len();
                        out.rejected += pending.messages as u64;
                        continue;
                    }
                    Err(e) => {
                        out.error = Some(io::Error::new(
                            e.kind(),
                            format!("{}: {e}", self.path_of(&key)),
                        ));
                        continue;
                    }
                }
            }
            let pending = self.files.get_mut(&key).expect("listed above");
            pending.used = self.clock;
            let before = pending.text.len();
            let mut result = WriteOut::default();
            let file = pending.file.as_mut().expect("opened above");
            super::text::write_text(file, &mut pending.text, &mut result);
            let written = if pending.text.is_empty() {
                pending.messages
            } else {
                result.written as usize
            };
            pending.messages -= written;
            self.messages -= written;
            self.bytes -= before - pending.text.len();
            out.written += written as u64;
            if let Some(e) = result.error {
                out.error = Some(e);
            }
        }
        // Forget paths with nothing pending and no open file: a stream of new hosts must not
        // grow the map.
        self.files
            .retain(|_, p| p.file.is_some() || !p.text.is_empty());
    }

    /// Closes every file (SIGHUP); each is reopened by path at its next line.
    pub(super) fn reopen(&mut self) {
        for pending in self.files.values_mut() {
            pending.file = None;
        }
        self.open = 0;
    }

    /// Before a privilege drop: the base directory we created becomes the user's, so that it
    /// can create the per-host directories under it.
    pub(super) fn hand_over(&self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        if self.base_created
            && let Err(e) = nix::unistd::fchown(&self.base, Some(uid), Some(gid))
        {
            log::warn!(
                "cannot give {} to uid {uid}: {e}",
                self.template.base().display()
            );
        }
    }

    /// The template, for logs.
    pub(super) fn describe(&self) -> String {
        self.template.to_string()
    }

    fn path_of(&self, key: &[String]) -> String {
        let mut path = self.template.base().to_owned();
        path.extend(key);
        path.display().to_string()
    }

    /// Closes the least recently used open file if the bound is reached.
    fn make_room(&mut self) {
        if self.open < MAX_OPEN_FILES {
            return;
        }
        if let Some(lru) = self
            .files
            .values_mut()
            .filter(|p| p.file.is_some())
            .min_by_key(|p| p.used)
        {
            lru.file = None;
            self.open -= 1;
        }
    }

    /// Opens base/key[0]/.../key[n] without following a link at any step, creating the
    /// directories (0750) and the file (0640).
    fn open_file(&self, key: &[String]) -> io::Result<File> {
        let (name, dirs) = key.split_last().expect("a template has a file name");
        let mut dir: OwnedFd = self.base.try_clone()?.into();
        let dir_flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        for component in dirs {
            let next = match openat(&dir, component.as_str(), dir_flags, Mode::empty()) {
                Err(nix::errno::Errno::ENOENT) => {
                    match mkdirat(&dir, component.as_str(), Mode::from_bits_truncate(0o750)) {
                        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    openat(&dir, component.as_str(), dir_flags, Mode::empty())
                }
                other => other,
            };
            dir = next.map_err(refuse_link)?;
        }
        let fd = openat(
            &dir,
            name.as_str(),
            OFlag::O_RDWR | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o640),
        )
        .map_err(refuse_link)?;
        let file = File::from(fd);
        super::file::check_log_file(&file)?;
        Ok(file)
    }
}

/// ELOOP (and ENOTDIR for a link where a directory should be) said plainly.
fn refuse_link(e: nix::errno::Errno) -> io::Error {
    match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => io::Error::new(
            io::ErrorKind::InvalidInput,
            "a component is a symbolic link or not a directory; logger does not follow links \
             under an output directory",
        ),
        e => e.into(),
    }
}
/// The templated output: lines in `style`, each into the file its message renders to.
pub(super) struct TemplatedOutput {
    files: Templated,
    style: super::text::LineStyle,
}

impl TemplatedOutput {
    /// Opens the template's base directory.
    pub(super) fn open(
        template: Template,
        style: super::text::LineStyle,
    ) -> io::Result<TemplatedOutput> {
        Ok(TemplatedOutput {
            files: Templated::open(template)?,
            style,
        })
    }
}

impl super::Output for TemplatedOutput {
    fn describe(&self) -> String {
        self.files.describe()
    }

    fn accept(&mut self, msg: &Message) {
        let style = &self.style;
        let key = self.files.template.render(msg, &style.local_host);
        self.files.accept(key, |buf| style.format(buf, msg));
    }

    /// The rendered path's components, then the line: `COUNT (u16) [LEN (u32) BYTES]... LINE`.
    fn encode_item(&self, msg: &Message, item: &mut Vec<u8>) {
        let key = self.files.template.render(msg, &self.style.local_host);
        item.extend_from_slice(&(key.len() as u16).to_le_bytes());
        for part in &key {
            item.extend_from_slice(&(part.len() as u32).to_le_bytes());
            item.extend_from_slice(part.as_bytes());
        }
        self.style.format(item, msg);
    }

    fn accept_item(&mut self, item: &[u8]) {
        match decode_item(item) {
            Some((key, line)) => self.files.accept(key, |buf| buf.extend_from_slice(line)),
            None => log::error!(
                "{}: a queued line without its path, skipped",
                self.describe()
            ),
        }
    }

    fn backlog_bytes(&self) -> usize {
        self.files.backlog_bytes()
    }

    fn backlog_messages(&self) -> usize {
        self.files.backlog_messages()
    }

    fn write_out(&mut self) -> WriteOut {
        let mut out = WriteOut::default();
        self.files.write_out(&mut out);
        out
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.files.reopen();
        Ok(())
    }

    fn hand_over(&mut self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        self.files.hand_over(uid, gid);
    }
}
/// The path components and the line of an item `encode_item` made; None if it is not one
/// (the disk queue's checksums make that damage the checksum missed).
fn decode_item(item: &[u8]) -> Option<(Vec<String>, &[u8])> {
    let count = u16::from_le_bytes(item.get(..2)?.try_into().ok()?);
    let mut rest = &item[2..];
    let mut key = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let part = rest.get(4..4 + len)?;
        key.push(String::from_utf8(part.to_vec()).ok()?);
        rest = &rest[4 + len..];
    }
    Some((key, rest))
}
