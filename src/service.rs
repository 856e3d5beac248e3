//! The service loop: one thread that owns the output, applies the rate limit, keeps the counters
//! honest and talks to the service manager.
//!
//! It waits on exactly three things: control events (signals, inputs that stopped), message
//! batches from the input threads, and its own next deadline (watchdog ping, throttled STATUS=,
//! heartbeat, output retry). Nothing else wakes it, so an idle daemon sleeps between watchdog
//! pings. Because WATCHDOG=1 is sent from here, a stuck loop misses its pings and systemd
//! restarts it.
//!
//! Stop protocol: STOPPING=1, every input drains its socket and reports `InputStopped`, the loop
//! takes every batch still queued, writes the backlog out (retrying a restarting journal for a
//! bounded time), and returns. Reload protocol: RELOADING=1, load and validate the new
//! configuration, bind new listeners before stopping old ones (unchanged listeners keep serving
//! throughout), reopen or switch the output, READY=1. Any failure keeps the running configuration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded, never, select, unbounded};

use crate::cli::Cli;
use crate::config::{Config, Env};
use crate::error::{Error, Result};
use crate::event::Control;
use crate::lifecycle::notify::Notifier;
use crate::message::Message;
use crate::ratelimit::{RateLimiter, Source};
use crate::sinks::{BACKLOG_LIMIT, OutputSet};
use crate::sources::{self, Input, Listener, Shared};
use crate::stats::{Snapshot, Stats};

/// Batches that may wait between the inputs and the loop (each up to `sources::BATCH` messages).
const QUEUE_BATCHES: usize = 8;
/// STATUS= is sent at most this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// How long a stop keeps retrying an output that refuses the backlog.
const STOP_RETRY_LIMIT: Duration = Duration::from_secs(10);
/// The pause between those retries.
const STOP_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Everything `Service::new` needs from start-up.
pub struct Startup {
    /// The command line (re-merged with the file on reload).
    pub cli: Cli,
    /// The environment that chose default paths.
    pub env: Env,
    /// The validated configuration.
    pub config: Config,
    /// Bound listeners.
    pub listeners: Vec<Listener>,
    /// The open outputs.
    pub outputs: OutputSet,
    /// True when running in the foreground (decides `auto` output).
    pub foreground: bool,
}

/// The running daemon.
pub struct Service {
    cli: Cli,
    env: Env,
    config: Config,
    foreground: bool,
    inputs: Vec<Input>,
    stopping_inputs: Vec<Input>,
    next_input_id: u64,
    outputs: OutputSet,
    notifier: Notifier,
    stats: Arc<Stats>,
    limiter: RateLimiter,
    shared: Shared,
    messages: Receiver<Vec<Message>>,
    control: Receiver<Control>,
    started: Instant,
    timers: Timers,
    reported: Snapshot,
    terminating: bool,
}

/// The loop's deadlines; `None` means not armed.
#[derive(Debug, Default)]
struct Timers {
    watchdog: Option<Instant>,
    status: Option<Instant>,
    last_status: Option<Instant>,
    heartbeat: Option<Instant>,
}

impl Timers {
    /// The earliest deadline, with the outputs' earliest retry.
    fn next(&self, retry: Option<Instant>) -> Option<Instant> {
        [self.watchdog, self.status, self.heartbeat, retry]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Service {
    /// Builds the service and starts its input threads and signal thread. Nothing is announced
    /// until `run`.
    pub fn new(start: Startup) -> Result<Service> {
        let (messages_tx, messages) = bounded(QUEUE_BATCHES);
        let (control_tx, control) = unbounded();
        let stats = Arc::new(Stats::default());
        let shared = Shared {
            messages: messages_tx,
            control: control_tx.clone(),
            stats: stats.clone(),
            limits: start.config.limits.clone(),
            escape_controls: start.config.escape_control_characters,
        };
        crate::lifecycle::signals::spawn(control_tx).map_err(|source| Error::Os {
            step: "installing signal handlers",
            source,
        })?;
        let mut service = Service {
            cli: start.cli,
            env: start.env,
            limiter: RateLimiter::new(start.config.rate_limit),
            config: start.config,
            foreground: start.foreground,
            inputs: Vec::new(),
            stopping_inputs: Vec::new(),
            next_input_id: 0,
            outputs: start.outputs,
            notifier: Notifier::default(),
            stats,
            shared,
            messages,
            control,
            started: Instant::now(),
            timers: Timers::default(),
            reported: Snapshot::default(),
            terminating: false,
        };
        for listener in start.listeners {
            service.spawn_input(listener)?;
        }
        Ok(service)
    }

    /// The listeners' bound addresses, port 0 resolved.
    pub fn bound(&self) -> Vec<String> {
        self.inputs.iter().map(|i| i.bound.clone()).collect()
    }

    fn spawn_input(&mut self, listener: Listener) -> Result<()> {
        let id = self.next_input_id;
        self.next_input_id += 1;
        let address = listener.addr.to_string();
        let input = Input::spawn(id, listener, self.shared.clone())
            .map_err(|source| Error::Listen { address, source })?;
        self.inputs.push(input);
        Ok(())
    }

    /// Announces readiness and serves until SIGTERM/SIGINT; returns after the drain.
    pub fn run(mut self, notifier: Notifier) -> Result<()> {
        self.notifier = notifier;
        let now = Instant::now();
        if let Some(interval) = self.notifier.watchdog_interval() {
            log::debug!("watchdog requested every {interval:?}; pinging at half of it");
            self.timers.watchdog = Some(now);
        }
        self.timers.heartbeat = self.config.heartbeat.map(|d| now + d);
        log::info!(
            "listening on {}; writing to {}",
            self.bound().join(", "),
            self.outputs.describe()
        );
        let status = self.status_line();
        self.notifier.ready(&status);
        self.timers.last_status = Some(now);

        while !self.finished() {
            self.wait_and_handle();
            self.run_timers();
            // After events and timers alike: a retry that succeeds is a change to report too.
            self.schedule_status();
        }
        self.final_write_out();
        let s = self.stats.snapshot();
        log::info!("stopped after {}: {s}", uptime(self.started.elapsed()));
        Ok(())
    }

    fn finished(&self) -> bool {
        self.terminating
            && self.inputs.is_empty()
            && self.stopping_inputs.is_empty()
            && self.messages.is_empty()
    }

    fn wait_and_handle(&mut self) {
        let accepting = self.outputs.largest_backlog() < BACKLOG_LIMIT;
        let never_rx = never();
        let messages = if accepting { &self.messages } else { &never_rx };
        let timeout = self
            .timers
            .next(self.outputs.next_retry())
            .map(|t| t.saturating_duration_since(Instant::now()));
        let control = &self.control;
        let event = match timeout {
            Some(t) => select! {
                recv(control) -> c => c.ok().map(Event::Control),
                recv(messages) -> m => m.ok().map(Event::Batch),
                default(t) => None,
            },
            None => select! {
                recv(control) -> c => c.ok().map(Event::Control),
                recv(messages) -> m => m.ok().map(Event::Batch),
            },
        };
        match event {
            Some(Event::Control(c)) => self.handle_control(c),
            Some(Event::Batch(batch)) => {
                self.accept(batch);
                // Take what else is already queued, so one write covers many batches.
                while self.outputs.largest_backlog() < BACKLOG_LIMIT {
                    match self.messages.try_recv() {
                        Ok(batch) => self.accept(batch),
                        Err(_) => break,
                    }
                }
                // Outputs waiting for their retry keep what they were given until then.
                self.write_out(false);
            }
            None => {}
        }
    }

    fn accept(&mut self, batch: Vec<Message>) {
        let now = Instant::now();
        let (mut limited, mut unrouted) = (0, 0);
        for msg in &batch {
            if !self.limiter.allow(Source::of(msg), now) {
                limited += 1;
            } else if !self.outputs.accept(msg) {
                unrouted += 1;
            }
        }
        Stats::add(&self.stats.rate_limited, limited);
        Stats::add(&self.stats.unrouted, unrouted);
    }

    /// Hands the outputs their backlogs (`all`: those waiting for a retry too); counts what
    /// they took. True when nothing is left anywhere.
    fn write_out(&mut self, all: bool) -> bool {
        let out = self.outputs.write_out(all);
        Stats::add(&self.stats.written, out.written);
        Stats::add(&self.stats.rejected, out.rejected);
        if out.error.is_some() {
            Stats::add(&self.stats.output_errors, 1);
        }
        self.outputs.backlog_messages() == 0
    }

    fn handle_control(&mut self, control: Control) {
        match control {
            Control::Terminate if !self.terminating => {
                self.terminating = true;
                log::info!("stopping: draining inputs and writing out what was accepted");
                self.notifier
                    .stopping("Stopping: writing out accepted messages");
                for input in self.inputs.drain(..) {
                    input.stop();
                    self.stopping_inputs.push(input);
                }
            }
            Control::Terminate => {}
            Control::Reload if self.terminating => {}
            Control::Reload => self.reload(),
            Control::InputStopped(id) => {
                if let Some(pos) = self.stopping_inputs.iter().position(|i| i.id == id) {
                    self.stopping_inputs.swap_remove(pos).join();
                } else if let Some(pos) = self.inputs.iter().position(|i| i.id == id) {
                    let input = self.inputs.swap_remove(pos);
                    log::error!("input {} stopped unexpectedly", input.addr);
                    input.join();
                }
            }
        }
    }

    fn reload(&mut self) {
        self.notifier.reloading();
        log::info!("reloading configuration");
        let result = Config::load(&self.cli, &self.env).and_then(|new| self.apply(new));
        match result {
            Ok(()) => log::info!(
                "reloaded: listening on {}; writing to {}",
                self.bound().join(", "),
                self.outputs.describe()
            ),
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                // logrotate's postrotate sends SIGHUP whatever the configuration says: the files
                // are reopened even when the new configuration is refused.
                crate::selflog::reopen();
                self.outputs.reopen();
            }
        }
        let status = self.status_line();
        self.notifier.ready(&status);
        self.timers.last_status = Some(Instant::now());
    }

    /// Applies a validated configuration, or changes nothing and says why.
    fn apply(&mut self, new: Config) -> Result<()> {
        let activated = self.inputs.iter().any(|i| i.activated);
        let wanted: Vec<_> = if new.listen_is_default && activated {
            Vec::new()
        } else {
            new.listen.clone()
        };
        if wanted.is_empty() && !activated {
            return Err(sources::bind::nothing_to_serve());
        }
        // Bind everything new first: if one fails, nothing has changed yet.
        let mut fresh = Vec::new();
        let serves = |i: &Input, addr: &crate::listen::ListenAddr| {
            i.addr == *addr || i.bound == addr.to_string()
        };
        for addr in &wanted {
            if !self.inputs.iter().any(|i| serves(i, addr)) {
                fresh.push(sources::bind::bind(addr, &new.limits)?);
            }
        }
        let outputs =
            self.outputs
                .reconfigured(&new.outputs, &new.journal_socket, self.foreground)?;
        // Committed from here on.
        self.outputs = outputs;
        crate::selflog::reopen();
        self.shared.limits = new.limits.clone();
        self.shared.escape_controls = new.escape_control_characters;
        for listener in fresh {
            self.spawn_input(listener)?;
        }
        let (keep, stop): (Vec<_>, Vec<_>) = self
            .inputs
            .drain(..)
            .partition(|i| i.activated || wanted.iter().any(|a| serves(i, a)));
        self.inputs = keep;
        for input in stop {
            log::info!("no longer listening on {}", input.bound);
            input.stop();
            self.stopping_inputs.push(input);
        }
        self.limiter.reconfigure(new.rate_limit);
        log::set_max_level(new.log_level);
        let now = Instant::now();
        self.timers.heartbeat = new.heartbeat.map(|d| now + d);
        self.config = new;
        Ok(())
    }

    fn schedule_status(&mut self) {
        if self.timers.status.is_none() && self.stats.snapshot() != self.reported {
            let earliest = self
                .timers
                .last_status
                .map_or(Instant::now(), |t| t + STATUS_INTERVAL);
            self.timers.status = Some(earliest.max(Instant::now()));
        }
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.timers.watchdog) {
            self.notifier.watchdog();
            let half = self.notifier.watchdog_interval().unwrap_or_default() / 2;
            self.timers.watchdog = Some(now + half);
        }
        if due(self.outputs.next_retry()) {
            self.write_out(false);
        }
        if due(self.timers.status) {
            self.timers.status = None;
            self.timers.last_status = Some(now);
            self.reported = self.stats.snapshot();
            let status = self.status_line();
            self.notifier.status(&status);
            for (source, n) in self.limiter.take_suppressed().into_iter().take(10) {
                log::warn!("suppressed {n} messages from {source} (rate limit)");
            }
        }
        if due(self.timers.heartbeat) {
            log::info!(
                "heartbeat: up {}, {}; outputs: {}",
                uptime(self.started.elapsed()),
                self.stats.snapshot(),
                self.outputs.status()
            );
            self.timers.heartbeat = self.config.heartbeat.map(|d| now + d);
        }
    }

    fn final_write_out(&mut self) {
        let deadline = Instant::now() + STOP_RETRY_LIMIT;
        while !self.write_out(true) && Instant::now() < deadline {
            std::thread::sleep(STOP_RETRY_PAUSE);
        }
        let left = self.outputs.backlog_messages();
        if left > 0 {
            log::error!(
                "stopping with {left} accepted messages the outputs did not take: {}",
                self.outputs.status()
            );
        }
    }

    fn status_line(&self) -> String {
        let s = self.stats.snapshot();
        format!(
            "Listening on {}; received {}, written {}, dropped {}, queued {}; outputs: {}",
            self.bound().join(", "),
            s.received,
            s.written,
            s.dropped(),
            self.outputs.backlog_messages(),
            self.outputs.status()
        )
    }
}

enum Event {
    Control(Control),
    Batch(Vec<Message>),
}

fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, s / 60 % 60),
    }
}
