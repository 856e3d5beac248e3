//! The service loop: one thread that takes the inputs' batches, applies the rate limit, hands
//! each message to the outputs that route it, keeps the counters honest and talks to the
//! service manager.
//!
//! It waits on one channel (`event`) and its own next deadline (watchdog ping, throttled
//! STATUS=, heartbeat, the stop deadline, the moment a stuck output starts to shed). The channel
//! carries control events (signals, inputs that stopped), message batches from the input
//! threads, and a token from an output that has room again. While an output holds the inputs
//! back, batches that arrive wait in the loop (`held`), still counted by the in-flight gate, so
//! the inputs stop once it is spent; control events are handled meanwhile. Nothing else wakes it, so
//! an idle daemon sleeps between watchdog pings. It never writes an output itself (each has its
//! own thread, `outputs::set`), so it never blocks on one. Because WATCHDOG=1 is sent from here, a
//! stuck loop misses its pings and systemd restarts it.
//!
//! Stop protocol: STOPPING=1, every input drains its socket and reports `InputStopped`, the loop
//! hands every batch still queued to the outputs, and each output writes out what it holds;
//! `stop-timeout` after SIGTERM, whatever is still queued is logged and counted as lost, per
//! output, and the loop returns. Reload protocol: RELOADING=1, load and validate the new
//! configuration, then a plan that may fail without changing anything (bind new listeners,
//! open new outputs, start their threads), then a commit that cannot fail (swap outputs, stop
//! listeners no longer wanted, hand the new limits to every input), READY=1.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant, SystemTime};

use crate::cli::Cli;
use crate::coalesce::Coalescer;
use crate::config::InputSpec;
use crate::config::{Config, Env};
use crate::control::ControlSocket;
use crate::error::{Error, Result};
use crate::event::{Control, Event, Request};
use crate::gate::Gate;
use crate::inputs::{self, Input, Listener, Received, Shared, Tunables};
use crate::lifecycle::notify::Notifier;
use crate::outputs::{MAX_BATCH, Opened, OutputSet};
use crate::ratelimit::{RateLimiter, Source};
use crate::receipt::Receipt;
use crate::report::{InputReport, ReloadOutcome, Report};
use crate::stats::{Snapshot, Stats};
use crate::tls;
use syslog::message::Message;

/// After stop-timeout, how long inputs get to hand over what they drained, counted as lost.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// STATUS= is sent at most this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Everything `Service::new` needs from start-up.
pub(crate) struct Startup {
    /// The command line (re-merged with the file on reload).
    pub cli: Cli,
    /// The environment that chose default paths.
    pub env: Env,
    /// The validated configuration.
    pub config: Config,
    /// Bound listeners.
    pub listeners: Vec<Listener>,
    /// The open outputs, not started yet.
    pub outputs: Opened,
    /// True when running in the foreground (decides `auto` output).
    pub foreground: bool,
    /// The control socket, bound (`logger --status`, `--reload`), if there is one.
    pub control: Option<ControlSocket>,
    /// The metrics endpoint, bound, if `metrics-listen` asks for one.
    pub metrics: Option<std::net::TcpListener>,
}

/// The running daemon.
pub(crate) struct Service {
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
    /// Everything that reaches the loop (`event`): signals, batches, outputs with room.
    events: Receiver<Event>,
    /// Batches taken from `events` while an output held the inputs back; still counted by the
    /// in-flight gate, so the inputs wait for them.
    held: VecDeque<Received>,
    /// An event other than a batch, taken in the middle of a round of batches, for the next
    /// turn.
    next: Option<Event>,
    started: Instant,
    timers: Timers,
    reported: Snapshot,
    /// Set by SIGTERM: when what is still queued is given up.
    stop_deadline: Option<Instant>,
    /// The pause after a heavy round that lets the next one take more.
    coalescer: Coalescer,
    /// What inputs that stopped had counted, by the address they served: totals never go
    /// back, and an input a reload restarts goes on from its old counts.
    retired: BTreeMap<String, Snapshot>,
    /// The control socket's file, removed at exit.
    control: Option<crate::control::SocketFile>,
    /// When it started serving, and when the running configuration was loaded.
    started_at: SystemTime,
    loaded_at: SystemTime,
    /// The last reload and how it went.
    last_reload: Option<ReloadOutcome>,
}

/// The loop's deadlines; `None` means not armed.
#[derive(Debug, Default)]
struct Timers {
    watchdog: Option<Instant>,
    status: Option<Instant>,
    last_status: Option<Instant>,
    heartbeat: Option<Instant>,
    /// While outputs hold messages, their counters change without waking the loop: it looks
    /// again at this time.
    refresh: Option<Instant>,
}

impl Timers {
    /// The earliest deadline.
    fn next(&self, stop: Option<Instant>) -> Option<Instant> {
        [
            self.watchdog,
            self.status,
            self.heartbeat,
            self.refresh,
            stop,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Service {
    /// Builds the service and starts its input threads and signal thread. Nothing is announced
    /// until `run`.
    pub(crate) fn new(start: Startup) -> Result<Service> {
        let (events_tx, events) = channel();
        let stats = Arc::new(Stats::default());
        let shared = Shared {
            events: events_tx.clone(),
            in_flight: Arc::new(Gate::new(
                inputs::IN_FLIGHT_BYTES,
                inputs::IN_FLIGHT_BATCHES,
            )),
            stats: stats.clone(),
        };
        crate::lifecycle::signals::spawn(events_tx.clone()).map_err(|source| Error::Os {
            step: "installing signal handlers",
            source,
        })?;
        let control = match start.control {
            Some(control) => {
                Some(
                    control
                        .spawn(events_tx.clone())
                        .map_err(|source| Error::Os {
                            step: "starting the control socket's thread",
                            source,
                        })?,
                )
            }
            None => None,
        };
        if let Some(metrics) = start.metrics {
            crate::metrics::spawn(
                metrics,
                start.config.metrics_allow.clone(),
                events_tx.clone(),
            )
            .map_err(|source| Error::Os {
                step: "starting the metrics thread",
                source,
            })?;
        }
        // What the disk queues hold of each reading input's position, read before they run.
        let queued: Vec<Vec<String>> = start
            .listeners
            .iter()
            .map(|l| {
                let transport = l.spec.listen.transport;
                inputs::position_key(transport)
                    .and_then(|key| start.outputs.queued_positions(key, transport))
                    .unwrap_or_default()
            })
            .collect();
        let outputs = OutputSet::start(start.outputs, stats.clone(), events_tx)?;
        let mut service = Service {
            cli: start.cli,
            env: start.env,
            limiter: RateLimiter::new(start.config.rate_limit),
            config: start.config,
            foreground: start.foreground,
            inputs: Vec::new(),
            stopping_inputs: Vec::new(),
            next_input_id: 0,
            outputs,
            notifier: Notifier::default(),
            stats,
            shared,
            events,
            held: VecDeque::new(),
            next: None,
            started: Instant::now(),
            timers: Timers::default(),
            reported: Snapshot::default(),
            stop_deadline: None,
            // The batches in flight as the coalescer sees them: the gate's eight batches of at
            // most BATCH_BYTES, each message charged a batch's share of it.
            coalescer: Coalescer::with_overhead(
                inputs::IN_FLIGHT_BYTES,
                inputs::BATCH_BYTES / inputs::BATCH,
            ),
            retired: BTreeMap::new(),
            control,
            started_at: SystemTime::now(),
            loaded_at: SystemTime::now(),
            last_reload: None,
        };
        for (listener, queued) in start.listeners.into_iter().zip(queued) {
            let mut tunables = tunables(&listener.spec, &service.config, None)?;
            tunables.queued = queued;
            let input = service.start_input_with(listener, tunables)?;
            service.inputs.push(input);
        }
        Ok(service)
    }

    /// The listeners' bound addresses, port 0 resolved.
    pub(crate) fn bound(&self) -> Vec<String> {
        self.inputs.iter().map(|i| i.bound.clone()).collect()
    }

    fn start_input_with(&mut self, listener: Listener, tunables: Tunables) -> Result<Input> {
        let id = self.next_input_id;
        self.next_input_id += 1;
        let address = listener.addr().to_string();
        Input::spawn(id, listener, tunables, self.shared.clone())
            .map_err(|source| Error::Listen { address, source })
    }

    /// Announces readiness and serves until SIGTERM/SIGINT; returns after the drain.
    pub(crate) fn run(mut self, notifier: Notifier) -> Result<()> {
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
            // After events and timers alike: an output's progress is a change to report too.
            self.schedule_status();
        }
        let deadline = self.stop_deadline.unwrap_or_else(Instant::now);
        let mut lost = self.give_up_queued_batches();
        lost += self.outputs.stop(deadline, &self.events);
        Stats::add(&self.stats.lost, lost);
        if let Some(control) = self.control.take() {
            control.remove();
        }
        let s = totals(&self.stats, &self.inputs, &self.retired);
        let up = uptime(self.started.elapsed());
        let long = format!("stopped after {up}: {s}");
        self.notifier.status(&long);
        if crate::selflog::to_journal() {
            let mut fields = s.fields();
            fields.push(("logger_uptime_seconds", self.started.elapsed().as_secs()));
            crate::selflog::info_with_fields(
                format_args!(
                    "stopped after {up}: received {}, written {}, dropped {}, lost {}",
                    s.received,
                    s.written,
                    s.dropped(),
                    s.lost
                ),
                &fields,
            );
        } else {
            log::info!("{long}");
        }
        Ok(())
    }

    fn terminating(&self) -> bool {
        self.stop_deadline.is_some()
    }

    fn finished(&self) -> bool {
        let Some(deadline) = self.stop_deadline else {
            return false;
        };
        // An input sends its last batch before it reports that it stopped, on the same channel:
        // once every input stopped, every batch reached the loop.
        let drained =
            self.inputs.is_empty() && self.stopping_inputs.is_empty() && self.held.is_empty();
        drained || Instant::now() >= deadline
    }

    /// At a stop that ran out of time while a blocked output held the inputs back: the batches
    /// still between the inputs and the loop are lost. Counted and said, including the ones
    /// inputs finish draining meanwhile (they no longer wait for room), for a short while.
    fn give_up_queued_batches(&mut self) -> u64 {
        let grace = Instant::now() + STOP_GRACE;
        let mut lost = 0;
        while let Some(batch) = self.held.pop_front() {
            lost += self.give_up(batch);
        }
        let mut next = self.next.take();
        loop {
            let event = match next.take() {
                Some(event) => event,
                None if self.stopping_inputs.is_empty() && self.inputs.is_empty() => {
                    match self.events.try_recv() {
                        Ok(event) => event,
                        Err(_) => break,
                    }
                }
                None => {
                    let left = grace.saturating_duration_since(Instant::now());
                    match self.events.recv_timeout(left) {
                        Ok(event) => event,
                        Err(_) => break,
                    }
                }
            };
            match event {
                Event::Batch(batch) => lost += self.give_up(batch),
                Event::Control(Control::InputStopped(id)) => {
                    for stopping in [true, false] {
                        let list = match stopping {
                            true => &mut self.stopping_inputs,
                            false => &mut self.inputs,
                        };
                        if let Some(pos) = list.iter().position(|i| i.id == id) {
                            let input = list.swap_remove(pos);
                            self.retire(input);
                        }
                    }
                }
                Event::Request(request) => self.answer(request),
                Event::Control(_) | Event::Room => {}
            }
        }
        // Inputs still waiting to hand a batch over give up: nobody will take it.
        self.shared.in_flight.close();
        if lost > 0 {
            log::error!(
                "stop-timeout reached with {lost} accepted messages not yet handed to an output; \
                 they are lost"
            );
        }
        lost as u64
    }

    /// Drops a batch the loop will not hand on, giving its bytes back; returns how many
    /// messages it held.
    fn give_up(&mut self, batch: Received) -> usize {
        self.shared.in_flight.give(batch.weight());
        // Not taken: not answered either (a RELP client sends them again).
        if let Some(receipt) = &batch.receipt {
            receipt.fail();
        }
        batch.messages.len()
    }

    fn wait_and_handle(&mut self) {
        let room = self.outputs.has_room();
        if room && !self.held.is_empty() {
            // An output has room again: the batches held for it go first.
            return self.take_batches();
        }
        let now = Instant::now();
        self.timers.refresh = (self.outputs.queued() > 0).then(|| now + STATUS_INTERVAL);
        // A bounded output that holds the inputs back sheds on time, not at the next timer.
        let shed_at = (!room).then(|| self.outputs.shed_at()).flatten();
        let timeout = [self.timers.next(self.stop_deadline), shed_at]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(now));
        let event = match (self.next.take(), timeout) {
            (Some(event), _) => Some(event),
            (None, Some(t)) => self.events.recv_timeout(t).ok(),
            (None, None) => self.events.recv().ok(),
        };
        match event {
            Some(Event::Control(c)) => self.handle_control(c),
            Some(Event::Request(request)) => self.answer(request),
            Some(Event::Batch(batch)) => {
                self.held.push_back(batch);
                if room {
                    self.take_batches();
                }
            }
            Some(Event::Room) => self.outputs.reap(),
            None => {}
        }
    }

    /// One round: hands the outputs every batch held and every batch already queued, while they
    /// have room. An event other than a batch ends the round; it is handled next, after the
    /// outputs got this round's shares.
    fn take_batches(&mut self) {
        let (mut messages, mut bytes) = (0, 0);
        loop {
            while let Some(batch) = self.held.pop_front() {
                if !self.outputs.has_room() {
                    self.held.push_front(batch);
                    break;
                }
                let weight = batch.weight();
                messages += batch.messages.len();
                bytes += weight;
                self.accept(batch);
                self.shared.in_flight.give(weight);
            }
            if !self.held.is_empty() {
                break;
            }
            match self.events.try_recv() {
                Ok(Event::Batch(batch)) => self.held.push_back(batch),
                Ok(Event::Room) => self.outputs.reap(),
                Ok(other) => {
                    self.next = Some(other);
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.outputs.flush();
        // Under a heavy stream, let batches gather before the next round (see `coalesce`): one
        // wake-up of the loop, and of each output, for several.
        if !self.terminating() {
            self.coalescer.wait(messages, bytes);
        }
    }

    /// Rate-limits a batch and hands it to the outputs, at most [`MAX_BATCH`] messages at a
    /// time, with its receipt: answered once every output that took some of it let go.
    fn accept(&mut self, received: Received) {
        let receipt = received.receipt.map(Arc::new);
        let mut batch = received.messages;
        while batch.len() > MAX_BATCH {
            let rest = batch.split_off(MAX_BATCH);
            self.accept_batch(batch, receipt.as_ref());
            batch = rest;
        }
        self.accept_batch(batch, receipt.as_ref());
    }

    fn accept_batch(&mut self, batch: Vec<Message>, receipt: Option<&Arc<Receipt>>) {
        let now = Instant::now();
        let mut allowed = 0u64;
        let mut i = 0;
        while i < batch.len() {
            // Stream senders are held back by reading in turns and by backpressure, and read
            // logs by reading no further, never by dropping what was accepted; the limit is
            // for datagram senders, which nothing else can slow down.
            if batch[i].origin.transport.is_held_back() {
                allowed |= 1 << i;
                i += 1;
                continue;
            }
            // A run of messages from one sender is one lookup.
            let source = Source::of(&batch[i]);
            let run = batch[i..]
                .iter()
                .take_while(|m| !m.origin.transport.is_held_back() && Source::of(m) == source)
                .count();
            let passed = self.limiter.allow_many(source, run as u64, now) as usize;
            for k in i..i + passed {
                allowed |= 1 << k;
            }
            i += run;
        }
        let limited = batch.len() as u64 - u64::from(allowed.count_ones());
        Stats::add(&self.stats.rate_limited, limited);
        let unrouted = self.outputs.accept(batch, allowed, receipt);
        Stats::add(&self.stats.unrouted, unrouted);
    }

    fn handle_control(&mut self, control: Control) {
        match control {
            Control::Terminate if !self.terminating() => {
                self.stop_deadline = Some(Instant::now() + self.config.stop_timeout);
                log::info!("stopping: draining inputs and writing out what was accepted");
                self.notifier
                    .stopping("Stopping: writing out accepted messages");
                for input in self.inputs.drain(..) {
                    input.stop();
                    self.stopping_inputs.push(input);
                }
            }
            Control::Terminate => {}
            Control::Reload if self.terminating() => {}
            Control::Reload => {
                let _ = self.reload();
            }
            Control::InputStopped(id) => {
                if let Some(pos) = self.stopping_inputs.iter().position(|i| i.id == id) {
                    let input = self.stopping_inputs.swap_remove(pos);
                    self.retire(input);
                } else if let Some(pos) = self.inputs.iter().position(|i| i.id == id) {
                    let input = self.inputs.swap_remove(pos);
                    log::error!("input {} stopped unexpectedly", input.spec.listen);
                    self.retire(input);
                }
            }
        }
    }

    /// Joins an input that stopped and keeps what it counted.
    fn retire(&mut self, input: Input) {
        *self
            .retired
            .entry(input.spec.listen.to_string())
            .or_default() += input.stats.snapshot();
        input.join();
    }

    /// Answers the control socket or the metrics responder. The asker may have given up: a
    /// send to it never blocks, and its failure is nobody's concern.
    fn answer(&mut self, request: Request) {
        match request {
            Request::Report(to) => {
                let _ = to.send(self.report());
            }
            Request::Reload(_) if self.terminating() => {}
            Request::Reload(to) => {
                let outcome = self.reload();
                let _ = to.send(outcome);
            }
        }
    }

    /// Every counter: the loop's and the outputs', every input's, and what stopped inputs
    /// counted.
    fn totals(&self) -> Snapshot {
        totals(
            &self.stats,
            self.inputs.iter().chain(&self.stopping_inputs),
            &self.retired,
        )
    }

    /// The daemon as `logger --status` and the metrics show it.
    fn report(&self) -> Report {
        let inputs = self
            .inputs
            .iter()
            .map(|i| {
                let listen = i.spec.listen.to_string();
                let mut stats = i.stats.snapshot();
                if let Some(before) = self.retired.get(&listen) {
                    let connections = stats.connections;
                    stats += *before;
                    stats.connections = connections;
                }
                InputReport {
                    listen,
                    bound: i.bound.clone(),
                    stats,
                }
            })
            .collect();
        let mut totals = self.totals();
        totals.connections = self
            .inputs
            .iter()
            .map(|i| i.stats.snapshot().connections)
            .sum();
        Report {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            started: self.started_at,
            uptime: self.started.elapsed(),
            config_file: self.config.file.clone(),
            loaded: self.loaded_at,
            last_reload: self.last_reload.clone(),
            totals,
            inputs,
            outputs: self.outputs.report(),
        }
    }

    /// Reloads the configuration file: the new one runs, or the running one is kept and the
    /// reason returned (and logged). Files are reopened either way.
    fn reload(&mut self) -> std::result::Result<(), String> {
        self.notifier.reloading();
        log::info!("reloading configuration");
        let result = Config::load(&self.cli, &self.env).and_then(|new| self.apply(new));
        let outcome = match result {
            Ok(()) => {
                log::info!(
                    "reloaded: listening on {}; writing to {}",
                    self.bound().join(", "),
                    self.outputs.describe()
                );
                self.loaded_at = SystemTime::now();
                Ok(())
            }
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                // logrotate's postrotate sends SIGHUP whatever the configuration says: the files
                // are reopened even when the new configuration is refused.
                crate::selflog::reopen();
                self.outputs.reopen();
                Err(e.to_string())
            }
        };
        self.last_reload = Some(ReloadOutcome {
            at: SystemTime::now(),
            error: outcome.clone().err(),
        });
        let status = self.status_line();
        self.notifier.ready(&status);
        self.timers.last_status = Some(Instant::now());
        outcome
    }

    /// Applies a validated configuration, or changes nothing and says why: first a plan that
    /// may fail and changes nothing running, then a commit that cannot fail.
    fn apply(&mut self, new: Config) -> Result<()> {
        let plan = self.plan(&new)?;
        self.commit(new, plan);
        Ok(())
    }

    /// Binds the listeners the new configuration adds, reads every TLS input's certificates
    /// again, opens the new outputs and starts their threads. On any failure everything it
    /// started is stopped again (an input already started has its messages delivered to the
    /// running outputs) and nothing else has changed. A running TLS input whose new files
    /// cannot be read keeps its certificates, and says so; a new one refuses the reload.
    fn plan(&mut self, new: &Config) -> Result<Plan> {
        let activated = self.inputs.iter().any(|i| i.activated);
        let wanted: &[InputSpec] = if new.inputs_are_default && activated {
            &[]
        } else {
            &new.inputs
        };
        if wanted.is_empty() && !activated {
            return Err(inputs::bind::nothing_to_serve());
        }
        // What each running input becomes (none: it stops).
        let mut retuned = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let spec = if input.activated {
                Some(inputs::bind::adopted_spec(&input.spec.listen, new)?)
            } else {
                wanted.iter().find(|s| serves(input, &s.listen)).cloned()
            };
            if let Some(spec) = spec {
                let old = input.settings.current();
                let tunables = tunables(&spec, new, Some(&old))?;
                retuned.push((input.id, spec, tunables));
            }
        }
        // Bind everything new first: if one fails, nothing has changed yet.
        let mut fresh = Vec::new();
        for spec in wanted {
            if !self.inputs.iter().any(|i| serves(i, &spec.listen)) {
                let listener = inputs::bind::bind(spec)?;
                let tunables = tunables(spec, new, None)?;
                fresh.push((listener, tunables));
            }
        }
        let outputs = self
            .outputs
            .plan(&new.outputs, &new.journal_socket, self.foreground)?;
        let mut started = Vec::with_capacity(fresh.len());
        for (listener, tunables) in fresh {
            match self.start_input_with(listener, tunables) {
                Ok(input) => started.push(input),
                Err(e) => {
                    for input in started {
                        input.stop();
                        self.stopping_inputs.push(input);
                    }
                    return Err(e);
                }
            }
        }
        Ok(Plan {
            retuned,
            started,
            outputs,
        })
    }

    /// Switches to the planned configuration. Nothing here can fail.
    fn commit(&mut self, new: Config, mut plan: Plan) {
        self.outputs.commit(plan.outputs);
        crate::selflog::reopen();
        let (keep, stop): (Vec<_>, Vec<_>) = self
            .inputs
            .drain(..)
            .partition(|i| plan.retuned.iter().any(|(id, ..)| *id == i.id));
        self.inputs = keep;
        for input in &mut self.inputs {
            let Some(pos) = plan.retuned.iter().position(|(id, ..)| *id == input.id) else {
                continue;
            };
            let (_, spec, tunables) = plan.retuned.swap_remove(pos);
            input.spec = spec;
            input.settings.replace(tunables);
            input.wake();
        }
        self.inputs.extend(plan.started);
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
    }

    fn schedule_status(&mut self) {
        if self.timers.status.is_none() && self.totals() != self.reported {
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
        if due(self.timers.status) {
            self.timers.status = None;
            self.timers.last_status = Some(now);
            self.reported = self.totals();
            let status = self.status_line();
            self.notifier.status(&status);
            for (source, n) in self.limiter.take_suppressed().into_iter().take(10) {
                log::warn!("suppressed {n} messages from {source} (rate limit)");
            }
        }
        if due(self.timers.heartbeat) {
            // In the journal a short MESSAGE with every counter as a field of its own
            // (`journalctl -u logger -o json`); elsewhere the whole line.
            let s = self.totals();
            let up = uptime(self.started.elapsed());
            if crate::selflog::to_journal() {
                let mut fields = s.fields();
                fields.push(("logger_uptime_seconds", self.started.elapsed().as_secs()));
                fields.push(("logger_queued", self.outputs.queued()));
                crate::selflog::info_with_fields(
                    format_args!(
                        "heartbeat: up {up}, received {}, written {}, dropped {}, queued {}",
                        s.received,
                        s.written,
                        s.dropped(),
                        self.outputs.queued()
                    ),
                    &fields,
                );
            } else {
                log::info!(
                    "heartbeat: up {up}, {s}; outputs: {}",
                    self.outputs.status()
                );
            }
            self.timers.heartbeat = self.config.heartbeat.map(|d| now + d);
        }
    }

    fn status_line(&self) -> String {
        let s = self.totals();
        format!(
            "Listening on {}; received {}, written {}, dropped {}, queued {}; outputs: {}",
            self.bound().join(", "),
            s.received,
            s.written,
            s.dropped(),
            self.outputs.queued(),
            self.outputs.status()
        )
    }
}

/// A reload prepared by `Service::plan`.
struct Plan {
    /// Each running input that stays, by id: what it serves now and its settings.
    retuned: Vec<(u64, InputSpec, Tunables)>,
    /// Inputs started for listeners that are new.
    started: Vec<Input>,
    /// The outputs.
    outputs: crate::outputs::Plan,
}

/// True if `input` serves `addr` (as configured, or as bound: port 0 resolved).
fn serves(input: &Input, addr: &crate::listen::ListenAddr) -> bool {
    input.spec.listen == *addr || input.bound == addr.to_string()
}

/// What the input `spec` of `config` runs with. A TLS input's files are read here; when they
/// cannot be, an input that had certificates (`old`) keeps them, and a new one cannot start.
fn tunables(spec: &InputSpec, config: &Config, old: Option<&Tunables>) -> Result<Tunables> {
    let tls = match spec.listen.transport {
        t if t.is_tls() => match tls::Server::load(&spec.tls) {
            Ok(server) => Some(server),
            Err(e) => match old.and_then(|o| o.tls.clone()) {
                Some(running) => {
                    log::error!(
                        "input {}: {e}; new connections keep the certificates it had",
                        spec.listen
                    );
                    Some(running)
                }
                None => return Err(Error::Config(format!("input {}: {e}", spec.listen))),
            },
        },
        _ => None,
    };
    Ok(Tunables {
        limits: spec.limits.clone(),
        allow: spec.allow.clone(),
        tls,
        escape_controls: config.escape_control_characters,
        state_dir: config.state_dir.clone(),
        queued: Vec::new(),
    })
}

/// The loop's and outputs' counters, the inputs', and what stopped inputs counted.
fn totals<'a>(
    stats: &Stats,
    inputs: impl IntoIterator<Item = &'a Input>,
    retired: &BTreeMap<String, Snapshot>,
) -> Snapshot {
    let mut total = stats.snapshot();
    for input in inputs {
        total += input.stats.snapshot();
    }
    for before in retired.values() {
        total += *before;
    }
    total
}

fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, s / 60 % 60),
    }
}
