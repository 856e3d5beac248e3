//! The stderr output: lines on the daemon's standard error (a terminal, or the pipe a
//! supervisor reads).

use std::io::{self, Write};
use std::os::fd::AsFd;

use super::text::{LineStyle, Lines};
use super::{Output, WriteOut};
use syslog::message::Message;

/// Lines on stderr.
pub struct StderrOutput {
    lines: Lines,
}

impl StderrOutput {
    /// Lines in `style` on stderr.
    pub fn new(style: LineStyle) -> StderrOutput {
        StderrOutput {
            lines: Lines::new(style),
        }
    }
}

impl Output for StderrOutput {
    fn describe(&self) -> String {
        "stderr".into()
    }

    fn accept(&mut self, msg: &Message) {
        self.lines.accept(msg);
    }

    fn encode_item(&self, msg: &Message, item: &mut Vec<u8>) {
        self.lines.encode(msg, item);
    }

    fn accept_item(&mut self, item: &[u8]) {
        self.lines.accept_item(item);
    }

    fn backlog_bytes(&self) -> usize {
        self.lines.bytes()
    }

    fn backlog_messages(&self) -> usize {
        self.lines.messages()
    }

    /// Through the descriptor, not std's lock: while a pipe nobody reads blocks this thread,
    /// our own log (`selflog`) must still be able to try stderr.
    fn write_out(&mut self) -> WriteOut {
        self.lines.write_to(&mut FdWriter(io::stderr().as_fd()))
    }
}

/// Writes straight to a descriptor.
struct FdWriter<'a>(std::os::fd::BorrowedFd<'a>);

impl Write for FdWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        nix::unistd::write(self.0, buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
