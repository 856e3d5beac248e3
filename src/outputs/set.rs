//! The outputs as a set: each message goes to every output whose route takes it, and each
//! output has its own thread, its own byte-bounded queue and its own counters, so one that
//! refuses or blocks (journald restarting, a full disk, an unread pipe) stalls neither the
//! others nor the service loop.
//!
//! When an output's queue is full its `queue-policy` decides: `block` (the default for local
//! outputs) holds the inputs back until it has room, so nothing accepted is lost; `drop` drops
//! the message for that output alone, counted, and says so once when it starts and once when
//! it ends; `block-bounded` (the default for outputs to a remote, forward, journal-remote and
//! Kafka: a remote that stays dead must not
//! stop a host's logging) blocks while the output moves and drops once it has taken nothing
//! for [`STUCK_AFTER`]. Routing happens here, on the loop; encoding and writing on each
//! output's thread. A batch is shared, not copied: each output gets the batch and a bit mask of
//! the messages it takes (a batch holds at most [`MAX_BATCH`] messages).
//!
//! Lifecycle: outputs are opened before `--fork` and the privilege drop ([`Opened`]: no thread
//! may exist across a fork) and started after. A reload is a plan ([`OutputSet::plan`]: opens
//! and starts what is new, changes nothing running) and a commit that cannot fail. An output a
//! reload removes goes on writing what it holds, then ends. A stop gives every output until a
//! deadline, then counts what is still queued as lost, per output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use std::sync::mpsc::{Receiver, Sender};

use crate::config::{LineFormat, Output, OutputSpec, QueuePolicy, Remote};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::receipt::Receipt;
use crate::route::Route;
use crate::stats::Stats;
use syslog::message::Message;

use super::Sink;
use super::worker::{Item, Share, Worker};

/// The most messages one batch may hold: one bit each in a `u64` mask.
pub const MAX_BATCH: usize = 64;
/// How long a `block-bounded` output may hold the inputs back with its queue full and letting
/// go of nothing (a dead remote) before it drops for itself instead: rsyslog's default
/// `queue.timeoutEnqueue`, after which it discards too.
pub(super) const STUCK_AFTER: Duration = Duration::from_secs(2);

/// Outputs opened at start-up, before any thread exists.
pub struct Opened {
    outputs: Vec<(OutputSpec, Place, Sink)>,
}

/// Where an output writes, resolved (`auto` decided), to tell whether a reload keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    output: Output,
    format: LineFormat,
    journal_socket: PathBuf,
    /// A forward output's wire, TLS and queue: a change opens it afresh.
    forward: crate::config::ForwardSpec,
}

impl Place {
    fn of(spec: &OutputSpec, journal_socket: &Path, foreground: bool) -> Place {
        let output = super::resolve(&spec.target, journal_socket, foreground);
        Place {
            journal_socket: match output {
                Output::Journal => journal_socket.to_owned(),
                _ => PathBuf::new(),
            },
            output,
            format: spec.format,
            forward: spec.forward.clone(),
        }
    }
}

impl Opened {
    /// Opens every output; any one failing fails the whole (start-up reports it). `daemon_uid`
    /// is the user the daemon runs as once started (see `Sink::open`).
    pub fn open(
        specs: &[OutputSpec],
        journal_socket: &Path,
        foreground: bool,
        daemon_uid: nix::unistd::Uid,
    ) -> Result<Opened> {
        let outputs = specs
            .iter()
            .map(|spec| {
                let sink = super::open(spec, journal_socket, foreground, daemon_uid)?;
                Ok((
                    spec.clone(),
                    Place::of(spec, journal_socket, foreground),
                    sink,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Opened { outputs })
    }

    /// Gives every output file we created to the user the daemon is about to become (see
    /// `Sink::hand_over`).
    pub fn hand_over_files(&mut self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
        for (_, _, sink) in &mut self.outputs {
            sink.hand_over(uid, gid);
        }
    }

    /// The positions of the reading input `key` (whose messages come by `transport`) that
    /// the outputs which may take its messages hold on disk: one each, or None if any of them
    /// holds none (it keeps no disk queue, say), and then only the input's own file counts.
    pub fn queued_positions(
        &self,
        key: &str,
        transport: syslog::message::Transport,
    ) -> Option<Vec<String>> {
        let takers = self.outputs.iter().filter(|(spec, _, _)| {
            spec.route.transports.is_empty() || spec.route.transports.contains(&transport)
        });
        let positions: Option<Vec<String>> = takers
            .map(|(_, _, sink)| sink.queued_position(key))
            .collect();
        positions.filter(|p| !p.is_empty())
    }

    /// Outputs by name, for logs.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.outputs.iter().map(|(_, _, s)| s.describe()).collect();
        names.join(", ")
    }
}

/// One running output as the loop sees it.
struct Routed {
    route: Route,
    policy: QueuePolicy,
    place: Place,
    worker: Worker,
    /// Messages dropped since its queue last had room (`drop`): said when it starts and when
    /// it ends, not per message.
    dropping: u64,
    /// The gauge's progress count when the loop last saw it change, and when that was.
    moved: (u64, Instant),
}

/// Every running output.
pub struct OutputSet {
    outputs: Vec<Routed>,
    /// Outputs a reload removed, writing out what they hold.
    retiring: Vec<Worker>,
    stats: Arc<Stats>,
    /// The loop's channel: an output that has room again, or has ended, says so there.
    wake: Sender<Event>,
}

/// What a reload will change, prepared without changing anything: new outputs are open and
/// their threads idle until the commit. Dropping a plan ends them.
pub struct Plan {
    /// For each new spec: the running output it keeps, or a new one.
    outputs: Vec<(OutputSpec, Kept)>,
}

enum Kept {
    Running(usize),
    /// A running forward output that takes new remotes and keeps its queue.
    Reconfigure(usize, Box<(Place, super::Reconfigure)>),
    New(Box<(Place, Worker)>),
}

impl OutputSet {
    /// Starts a thread for each opened output.
    pub fn start(opened: Opened, stats: Arc<Stats>, wake: Sender<Event>) -> Result<OutputSet> {
        let mut set = OutputSet {
            outputs: Vec::new(),
            retiring: Vec::new(),
            stats,
            wake,
        };
        for (spec, place, sink) in opened.outputs {
            let worker = set.spawn(sink, spec.queue_size)?;
            set.outputs.push(Routed::new(&spec, place, worker));
        }
        Ok(set)
    }

    fn spawn(&self, sink: Sink, limit: usize) -> Result<Worker> {
        Worker::spawn(sink, limit, self.stats.clone(), self.wake.clone()).map_err(|source| {
            Error::Os {
                step: "starting an output thread",
                source,
            }
        })
    }

    /// True unless an output's queue is full and its policy holds the inputs back (`block`,
    /// or `block-bounded` while the output moves): then the loop must not take messages. The
    /// loop looks again when a `block-bounded` output would start to shed (`shed_at`).
    pub fn has_room(&mut self) -> bool {
        let now = Instant::now();
        !self
            .outputs
            .iter_mut()
            .any(|o| o.worker.gauge.full() && !o.sheds(now))
    }

    /// When a `block-bounded` output that holds the inputs back will have been stuck for
    /// [`STUCK_AFTER`] (as of the last `has_room`): the loop looks again then.
    pub fn shed_at(&self) -> Option<Instant> {
        self.outputs
            .iter()
            .filter(|o| o.policy == QueuePolicy::BlockBounded && o.worker.gauge.full())
            .map(|o| o.moved.1 + STUCK_AFTER)
            .min()
    }

    /// Hands the messages of `batch` whose bit is set in `allowed` (at most [`MAX_BATCH`]) to
    /// every output whose route takes them. Returns how many no output took (unrouted).
    pub fn accept(
        &mut self,
        batch: Vec<Message>,
        allowed: u64,
        receipt: Option<&Arc<Receipt>>,
    ) -> u64 {
        debug_assert!(batch.len() <= MAX_BATCH);
        let batch = Arc::new(batch);
        let mut routed = 0u64;
        let now = Instant::now();
        for out in &mut self.outputs {
            let mask = if out.route.is_all() {
                allowed
            } else {
                select(&batch, allowed, |m| out.route.matches(m))
            };
            routed |= mask;
            if mask == 0 {
                continue;
            }
            let n = u64::from(mask.count_ones());
            if out.sheds(now) {
                let gauge = &out.worker.gauge;
                if out.dropping == 0 {
                    log::warn!(
                        "output {} is full ({} bytes queued): dropping its messages until it \
                         has room; the other outputs go on",
                        out.worker.name,
                        gauge.queued_bytes.load(Relaxed)
                    );
                }
                out.dropping += n;
                gauge.dropped.fetch_add(n, Relaxed);
                Stats::add(&self.stats.queue_dropped, n);
                continue;
            }
            if out.dropping > 0 {
                log::warn!(
                    "output {} has room again; {} messages were dropped for it",
                    out.worker.name,
                    out.dropping
                );
                out.dropping = 0;
            }
            let bytes = weight(&batch, mask);
            let gauge = &out.worker.gauge;
            gauge.queued_bytes.fetch_add(bytes, Relaxed);
            gauge.queued.fetch_add(n, Relaxed);
            out.worker.push(Share {
                batch: batch.clone(),
                mask,
                bytes,
                receipt: receipt.cloned(),
            });
        }
        u64::from((allowed & !routed).count_ones())
    }

    /// Sends each output what `accept` gave it since the last flush: the loop calls it once it
    /// has taken every batch that was waiting, so an output's thread wakes once for them all.
    pub fn flush(&mut self) {
        for out in &mut self.outputs {
            out.worker.flush();
        }
    }

    /// Messages waiting in every output, retiring ones included.
    pub fn queued(&self) -> u64 {
        self.workers().map(|w| w.gauge.queued.load(Relaxed)).sum()
    }

    /// Joins outputs a reload removed once they have written out what they held.
    pub fn reap(&mut self) {
        self.retiring.retain_mut(|w| {
            let done = w.reap();
            if done {
                log::info!("output {} wrote out what it held and was closed", w.name);
            }
            !done
        });
    }

    /// Reopens every file (SIGHUP: logrotate moved them); each thread logs its failures.
    pub fn reopen(&mut self) {
        for out in &mut self.outputs {
            out.worker.send(Item::Reopen);
        }
    }

    /// Outputs by name, for logs (`journal, file:/var/log/auth.log`).
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self
            .outputs
            .iter()
            .map(|o| o.worker.name.as_str())
            .collect();
        names.join(", ")
    }

    /// Each running output's counters, for `logger --status` and the metrics.
    pub fn report(&self) -> Vec<crate::report::OutputReport> {
        self.outputs
            .iter()
            .map(|o| {
                let g = &o.worker.gauge;
                crate::report::OutputReport {
                    name: o.worker.name.clone(),
                    written: g.written.load(Relaxed),
                    queued: g.queued.load(Relaxed),
                    queued_bytes: g.queued_bytes.load(Relaxed) as u64,
                    disk_queued: g.durable.load(Relaxed),
                    dropped: g.dropped.load(Relaxed),
                    rejected: g.rejected.load(Relaxed),
                    errors: g.errors.load(Relaxed),
                    // A forward output has a connection to show before its first attempt too.
                    link: g.link.lock().ok().and_then(|l| l.clone()).or_else(|| {
                        matches!(o.place.output, Output::Forward(_))
                            .then(crate::outputs::forward::LinkState::default)
                    }),
                }
            })
            .collect()
    }

    /// Compact per-output counters for STATUS= and the heartbeat.
    pub fn status(&self) -> String {
        let parts: Vec<String> = self
            .workers()
            .map(|w| {
                let g = &w.gauge;
                let link = g.link.lock().ok().and_then(|l| l.clone());
                format!(
                    "{} written {} queued {} dropped {} errors {}{}",
                    w.name,
                    g.written.load(Relaxed),
                    g.queued.load(Relaxed),
                    g.dropped.load(Relaxed) + g.rejected.load(Relaxed),
                    g.errors.load(Relaxed),
                    link.map(|l| format!(" ({l})")).unwrap_or_default()
                )
            })
            .collect();
        parts.join("; ")
    }

    /// Prepares the set a reload asks for: outputs that stay (same place, same format) are kept
    /// with their queues, new ones opened and started. Changes nothing running; an error leaves
    /// everything as it was.
    pub fn plan(
        &self,
        specs: &[OutputSpec],
        journal_socket: &Path,
        foreground: bool,
    ) -> Result<Plan> {
        let mut outputs = Vec::with_capacity(specs.len());
        // Each running output is kept for at most one spec (two specs may name one place).
        let mut taken = vec![false; self.outputs.len()];
        for spec in specs {
            let place = Place::of(spec, journal_socket, foreground);
            let running =
                (0..self.outputs.len()).find(|&i| !taken[i] && self.outputs[i].place == place);
            let kept = match (running, self.same_queue(&place, &taken)) {
                (Some(i), _) => {
                    taken[i] = true;
                    Kept::Running(i)
                }
                // A forward output changed, same queue directory: the running output takes the
                // new remotes (its thread holds the queue's lock, a new one could not open it).
                (None, Some((i, remotes))) => {
                    taken[i] = true;
                    let retarget = crate::outputs::forward::Forwarder::prepare(spec, remotes)
                        .map_err(|source| Error::Output {
                            output: spec.target.to_string(),
                            source,
                        })?;
                    Kept::Reconfigure(i, Box::new((place, super::Reconfigure::new(retarget))))
                }
                (None, None) => {
                    // A reload runs as the daemon's user already.
                    let sink = super::open(
                        spec,
                        journal_socket,
                        foreground,
                        nix::unistd::Uid::effective(),
                    )?;
                    Kept::New(Box::new((place, self.spawn(sink, spec.queue_size)?)))
                }
            };
            outputs.push((spec.clone(), kept));
        }
        Ok(Plan { outputs })
    }

    /// The running forward output not yet kept whose queue directory `place` names, and the
    /// remotes `place` forwards to.
    fn same_queue<'a>(&self, place: &'a Place, taken: &[bool]) -> Option<(usize, &'a [Remote])> {
        let Output::Forward(remotes) = &place.output else {
            return None;
        };
        let dir = place.forward.queue_dir.as_ref()?;
        let i = (0..self.outputs.len()).find(|&i| {
            !taken[i]
                && matches!(self.outputs[i].place.output, Output::Forward(_))
                && self.outputs[i].place.forward.queue_dir.as_ref() == Some(dir)
        })?;
        Some((i, remotes))
    }

    /// Applies a plan. Kept outputs take their new route and policy and reopen their files (a
    /// forward output its new remotes); removed ones write out what they hold, then end.
    pub fn commit(&mut self, plan: Plan) {
        let mut old: Vec<Option<Routed>> = self.outputs.drain(..).map(Some).collect();
        for (spec, kept) in plan.outputs {
            let out = match kept {
                Kept::Running(i) => {
                    let mut out = old[i].take().expect("a running output is kept once");
                    out.follow(&spec);
                    out.worker.send(Item::Reopen);
                    out
                }
                Kept::Reconfigure(i, change) => {
                    let (place, change) = *change;
                    let mut out = old[i].take().expect("a running output is kept once");
                    out.follow(&spec);
                    out.worker.name = place.output.to_string();
                    out.place = place;
                    out.worker.send(Item::Reconfigure(change));
                    out
                }
                Kept::New(new) => {
                    let (place, worker) = *new;
                    Routed::new(&spec, place, worker)
                }
            };
            self.outputs.push(out);
        }
        for mut out in old.into_iter().flatten() {
            log::info!("no longer writing to {}", out.worker.name);
            out.worker.send(Item::Stop);
            self.retiring.push(out.worker);
        }
    }

    /// Stops every output: each writes out what it holds until `deadline`; what is still
    /// queued then is logged and counted as lost, per output. Returns the messages lost.
    /// `events` is the loop's channel, where the outputs say they ended (the inputs are gone:
    /// nothing else comes).
    pub fn stop(mut self, deadline: Instant, events: &Receiver<Event>) -> u64 {
        for out in &mut self.outputs {
            out.worker.send(Item::Stop);
        }
        let mut workers: Vec<Worker> = self.outputs.drain(..).map(|o| o.worker).collect();
        workers.append(&mut self.retiring);
        loop {
            workers.retain_mut(|w| !w.reap());
            let left = deadline.saturating_duration_since(Instant::now());
            if workers.is_empty() || left.is_zero() || events.recv_timeout(left).is_err() {
                break;
            }
        }
        workers.retain_mut(|w| !w.reap());
        let mut lost = 0;
        for w in &workers {
            let durable = w.gauge.durable.load(Relaxed);
            let n = w.gauge.queued.load(Relaxed).saturating_sub(durable);
            log::error!(
                "stop-timeout reached: {} did not take {n} accepted messages; they are lost",
                w.name
            );
            lost += n;
        }
        // The threads still writing are left to the process exit.
        lost
    }

    fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.outputs
            .iter()
            .map(|o| &o.worker)
            .chain(self.retiring.iter())
    }
}

impl Routed {
    fn new(spec: &OutputSpec, place: Place, worker: Worker) -> Routed {
        Routed {
            route: spec.route.clone(),
            policy: spec.policy,
            place,
            worker,
            dropping: 0,
            moved: (0, Instant::now()),
        }
    }

    /// True if, by its policy, it drops what it cannot take now rather than hold the inputs
    /// back: `drop` when its queue is full; `block-bounded` when full and stuck (nothing let go
    /// for [`STUCK_AFTER`]), and then, once it drops, until it moves again or its queue is
    /// under half full (a stuck output's queue shrinks a little as it encodes what it took:
    /// that is no room, and the log would flap).
    fn sheds(&mut self, now: Instant) -> bool {
        let gauge = &self.worker.gauge;
        let queued = gauge.queued_bytes.load(Relaxed);
        let limit = gauge.limit.load(Relaxed);
        match self.policy {
            QueuePolicy::Drop => queued >= limit,
            QueuePolicy::BlockBounded => {
                let progress = gauge.progress.load(Relaxed);
                if progress != self.moved.0 {
                    self.moved = (progress, now);
                }
                let stuck = now.saturating_duration_since(self.moved.1) >= STUCK_AFTER;
                let bound = if self.dropping > 0 { limit / 2 } else { limit };
                stuck && queued >= bound
            }
            QueuePolicy::Block | QueuePolicy::DropOldest => false,
        }
    }

    /// A reload keeps this output: it takes the new spec's route, policy and queue bound.
    fn follow(&mut self, spec: &OutputSpec) {
        self.route = spec.route.clone();
        self.policy = spec.policy;
        self.worker.gauge.limit.store(spec.queue_size, Relaxed);
    }
}

/// The bits of `allowed` whose message `takes` says yes to.
fn select(batch: &[Message], allowed: u64, takes: impl Fn(&Message) -> bool) -> u64 {
    let mut mask = 0;
    let mut bits = allowed;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if takes(&batch[i]) {
            mask |= 1 << i;
        }
    }
    mask
}

/// What the messages of `mask` weigh in bytes.
fn weight(batch: &[Message], mask: u64) -> usize {
    let mut bytes = 0;
    let mut bits = mask;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        bytes += batch[i].weight();
    }
    bytes
}
