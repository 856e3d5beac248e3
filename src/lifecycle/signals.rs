//! Signals, delivered into the service loop as events. The handlers (installed by `signal-hook`)
//! only write to a pipe; the work happens in the loop.

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use std::sync::mpsc::Sender;

use crate::event::{Control, Event};

/// Starts the thread that forwards SIGHUP as `Reload` and SIGTERM/SIGINT as `Terminate`.
pub(crate) fn spawn(events: Sender<Event>) -> io::Result<Handle> {
    let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let event = match signal {
                    SIGHUP => Control::Reload,
                    _ => Control::Terminate,
                };
                if events.send(Event::Control(event)).is_err() {
                    break;
                }
            }
        })?;
    Ok(handle)
}
