//! The outputs as a set: each message goes to every output whose route takes it, and each
//! output keeps its own backlog, its own retry timer and its own counters, so one that refuses
//! (journald restarting, a full disk) is retried on its own while the others go on.
//!
//! Policy when an output is stuck: `block`. While any output's backlog is over
//! [`super::BACKLOG_LIMIT`], the service loop takes no new batches and the inputs push back;
//! nothing accepted is dropped. (Per-output threads and a `drop` policy are the next step of
//! issue 14; see ARCHITECTURE.md.)

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::OutputSpec;
use crate::error::Result;
use crate::message::Message;
use crate::route::Route;

use super::{Sink, WriteOut};

/// Retry backoff bounds for an output that refuses what it is given.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// One output with its route and its own retry state and counters.
struct Routed {
    route: Route,
    sink: Sink,
    /// When to try again after a failed write; None while it writes.
    retry: Option<Instant>,
    backoff: Duration,
    written: u64,
    errors: u64,
}

/// Every configured output.
pub struct OutputSet {
    outputs: Vec<Routed>,
}

impl OutputSet {
    /// Opens every output; any one failing fails the whole (start-up reports it).
    pub fn open(specs: &[OutputSpec], journal_socket: &Path, foreground: bool) -> Result<Self> {
        let outputs = specs
            .iter()
            .map(|spec| {
                Ok(Routed::new(
                    spec.route.clone(),
                    Sink::open(&spec.target, spec.format, journal_socket, foreground)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(OutputSet { outputs })
    }

    /// Hands `msg` to every output whose route takes it; false if none does (unrouted).
    pub fn accept(&mut self, msg: &Message) -> bool {
        let mut taken = false;
        for out in &mut self.outputs {
            if out.route.matches(msg) {
                out.sink.accept(msg);
                taken = true;
            }
        }
        taken
    }

    /// The largest backlog of any output, in bytes: the loop stops taking messages while one
    /// is over the bound.
    pub fn largest_backlog(&self) -> usize {
        self.outputs
            .iter()
            .map(|o| o.sink.backlog_bytes())
            .max()
            .unwrap_or(0)
    }

    /// Messages waiting in all backlogs.
    pub fn backlog_messages(&self) -> usize {
        self.outputs.iter().map(|o| o.sink.backlog_messages()).sum()
    }

    /// The earliest retry any output waits for.
    pub fn next_retry(&self) -> Option<Instant> {
        self.outputs.iter().filter_map(|o| o.retry).min()
    }

    /// Writes out every output that is not waiting for its retry (all of them when `now_all`),
    /// arming the retry of those that fail. Returns the sums.
    pub fn write_out(&mut self, now_all: bool) -> WriteOut {
        let now = Instant::now();
        let mut total = WriteOut::default();
        for out in &mut self.outputs {
            if !now_all && out.retry.is_some_and(|t| t > now) {
                continue;
            }
            let result = out.write_out();
            total.written += result.written;
            total.rejected += result.rejected;
            if result.error.is_some() {
                total.error = result.error;
            }
        }
        total
    }

    /// Reopens every file (SIGHUP: logrotate moved them); logs the ones that fail.
    pub fn reopen(&mut self) {
        for out in &mut self.outputs {
            if let Err(e) = out.sink.reopen() {
                log::error!("cannot reopen {}: {e}", out.sink.describe());
            }
        }
    }

    /// Gives every output file to the user the daemon is about to become (see `Sink`).
    pub fn hand_over_files(&mut self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        for out in &mut self.outputs {
            out.sink.hand_over(uid, gid);
        }
    }

    /// Outputs by name, for logs (`journal, file:/var/log/auth.log`).
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.outputs.iter().map(|o| o.sink.describe()).collect();
        names.join(", ")
    }

    /// Compact per-output counters for STATUS= and the heartbeat.
    pub fn status(&self) -> String {
        let parts: Vec<String> = self
            .outputs
            .iter()
            .map(|o| {
                format!(
                    "{} written {} queued {} errors {}",
                    o.sink.describe(),
                    o.written,
                    o.sink.backlog_messages(),
                    o.errors
                )
            })
            .collect();
        parts.join("; ")
    }

    /// Builds the set a reload asks for: outputs that stay (same place, same format) are kept
    /// with their backlogs and reopened, new ones opened. Returns the new set, or an error with
    /// nothing changed: the caller commits by replacing `self`, which cannot fail. Outputs that
    /// go must have written out everything first.
    pub fn reconfigured(
        &mut self,
        specs: &[OutputSpec],
        journal_socket: &Path,
        foreground: bool,
    ) -> Result<OutputSet> {
        // Each running output is kept for at most one spec (two specs may name one place).
        let mut kept: Vec<Option<usize>> = Vec::with_capacity(specs.len());
        for spec in specs {
            let found = self.outputs.iter().enumerate().position(|(i, o)| {
                !kept.contains(&Some(i))
                    && o.sink.format() == spec.format
                    && o.sink.serves(&spec.target, journal_socket, foreground)
            });
            kept.push(found);
        }
        // Open what is new first: if one fails, nothing has changed.
        let mut fresh = Vec::new();
        for (spec, kept) in specs.iter().zip(&kept) {
            if kept.is_none() {
                fresh.push(Sink::open(
                    &spec.target,
                    spec.format,
                    journal_socket,
                    foreground,
                )?);
            }
        }
        for (i, out) in self.outputs.iter_mut().enumerate() {
            if !kept.contains(&Some(i)) {
                out.write_out();
                if out.sink.backlog_messages() > 0 {
                    return Err(crate::error::Error::Runtime(format!(
                        "output {} still holds {} messages it cannot write; not removing it",
                        out.sink.describe(),
                        out.sink.backlog_messages()
                    )));
                }
            }
        }
        // Past every check: move the kept outputs over.
        let mut old: Vec<Option<Routed>> = self.outputs.drain(..).map(Some).collect();
        let mut fresh = fresh.into_iter();
        let outputs = specs
            .iter()
            .zip(kept)
            .map(|(spec, kept)| match kept.and_then(|i| old[i].take()) {
                Some(mut out) => {
                    out.route = spec.route.clone();
                    if let Err(e) = out.sink.reopen() {
                        log::error!("cannot reopen {}: {e}", out.sink.describe());
                    }
                    out
                }
                None => Routed::new(
                    spec.route.clone(),
                    fresh.next().expect("one fresh sink per new spec"),
                ),
            })
            .collect();
        Ok(OutputSet { outputs })
    }
}

impl Routed {
    fn new(route: Route, sink: Sink) -> Routed {
        Routed {
            route,
            sink,
            retry: None,
            backoff: Duration::ZERO,
            written: 0,
            errors: 0,
        }
    }

    /// Hands the backlog to the output; on failure arms its retry with backoff and says so
    /// once, when it starts failing.
    fn write_out(&mut self) -> WriteOut {
        let out = self.sink.write_out();
        self.written += out.written;
        match &out.error {
            None => {
                if self.retry.take().is_some() {
                    log::info!("output {} is writable again", self.sink.describe());
                }
                self.backoff = Duration::ZERO;
            }
            Some(e) => {
                self.errors += 1;
                if self.retry.is_none() {
                    log::error!(
                        "cannot write to {}: {e}; keeping {} messages and retrying",
                        self.sink.describe(),
                        self.sink.backlog_messages()
                    );
                }
                self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                self.retry = Some(Instant::now() + self.backoff);
            }
        }
        out
    }
}
