//! Signals, delivered into the service loop as events. The handlers (installed by `signal-hook`)
//! only write to a pipe; the work happens in the loop.

use std::io;

use crossbeam_channel::Sender;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::event::Control;

/// Starts the thread that forwards SIGHUP as `Reload` and SIGTERM/SIGINT as `Terminate`.
pub fn spawn(control: Sender<Control>) -> io::Result<Handle> {
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
                if control.send(event).is_err() {
                    break;
                }
            }
        })?;
    Ok(handle)
}
