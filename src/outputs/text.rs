//! The backlog of the outputs that write lines (a file, stderr): each accepted message as one
//! line in the output's format, appended to one buffer that a write-out hands to the file in
//! one write(2). Each line holds exactly one raw newline (the escaping guarantees it), so
//! counting newlines in a partial write counts messages.

use std::io::{self, Write};

use super::WriteOut;
use super::formats::{json, line, rfc5424, rsyslog};
use crate::config::LineFormat;
use crate::timestamp::Zone;
use syslog::message::Message;

/// A message heavier than this gets its line's room reserved exactly.
const LARGE_LINE: usize = 64 * 1024;
/// Once written out, a line buffer larger than this is shrunk: more than a default queue
/// holds, so only a huge message leaves it that large.
const KEPT_TEXT_CAPACITY: usize = 1 << 20;

/// How lines are written: the format, the zone of the times they write, this host's name.
#[derive(Debug, Clone)]
pub struct LineStyle {
    pub format: LineFormat,
    pub zone: Zone,
    pub local_host: String,
}

impl LineStyle {
    /// The style of an output: `format` in `zone`, naming this host as the kernel does.
    pub fn new(format: LineFormat, zone: Zone) -> LineStyle {
        let local_host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".into());
        LineStyle {
            format,
            zone,
            local_host,
        }
    }

    /// Appends `msg` as one line.
    pub fn format(&self, buf: &mut Vec<u8>, msg: &Message) {
        format_line(self.format, self.zone, buf, msg, &self.local_host);
    }
}

/// Lines not yet written.
pub(super) struct Lines {
    style: LineStyle,
    text: Vec<u8>,
    messages: usize,
}

impl Lines {
    /// An empty backlog writing in `style`.
    pub(super) fn new(style: LineStyle) -> Lines {
        Lines {
            style,
            text: Vec::with_capacity(64 * 1024),
            messages: 0,
        }
    }

    /// Appends `msg` as a line.
    pub(super) fn accept(&mut self, msg: &Message) {
        if msg.weight() > LARGE_LINE {
            // Its line at its size, not the double of what the buffer held.
            self.text.reserve_exact(msg.weight() + 512);
        }
        self.style.format(&mut self.text, msg);
        self.messages += 1;
    }

    /// Appends `msg` as a line to `item` (for a disk queue in front of the output).
    pub(super) fn encode(&self, msg: &Message, item: &mut Vec<u8>) {
        self.style.format(item, msg);
    }

    /// Appends a line `encode` made.
    pub(super) fn accept_item(&mut self, line: &[u8]) {
        self.text.extend_from_slice(line);
        self.messages += 1;
    }

    /// Bytes waiting.
    pub(super) fn bytes(&self) -> usize {
        self.text.len()
    }

    /// Messages waiting.
    pub(super) fn messages(&self) -> usize {
        self.messages
    }

    /// Writes as much as `w` takes; what it did not take stays for the next write-out.
    pub(super) fn write_to(&mut self, w: &mut impl Write) -> WriteOut {
        let mut out = WriteOut::default();
        write_text(w, &mut self.text, &mut out);
        if self.text.is_empty() {
            out.written += self.messages as u64;
            self.messages = 0;
            if self.text.capacity() > KEPT_TEXT_CAPACITY {
                // One huge line came through: give its memory back rather than keep it idle.
                self.text.shrink_to(KEPT_TEXT_CAPACITY / 4);
            }
        } else {
            self.messages -= out.written as usize;
        }
        out
    }
}

/// One message as a line in `format`.
pub(super) fn format_line(
    format: LineFormat,
    zone: Zone,
    buf: &mut Vec<u8>,
    msg: &Message,
    local_host: &str,
) {
    use rsyslog::Stamp;
    match format {
        LineFormat::Detailed => line::format_line(buf, msg, local_host),
        LineFormat::Traditional => rsyslog::format(buf, msg, local_host, zone, Stamp::Traditional),
        LineFormat::Rfc3339 => rsyslog::format(buf, msg, local_host, zone, Stamp::Rfc3339),
        LineFormat::Rfc5424 => rfc5424::format(buf, msg, local_host, zone),
        LineFormat::Json => json::format(buf, msg, local_host, zone),
    }
}

fn count_lines(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'\n').count()
}

pub(super) fn write_text(w: &mut impl Write, text: &mut Vec<u8>, out: &mut WriteOut) {
    let mut done = 0;
    while done < text.len() {
        match w.write(&text[done..]) {
            Ok(0) => {
                out.error = Some(io::ErrorKind::WriteZero.into());
                break;
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    // After a whole write the caller knows how many lines it held; only a partial one is counted.
    if done < text.len() {
        out.written += count_lines(&text[..done]) as u64;
    }
    text.drain(..done);
}
