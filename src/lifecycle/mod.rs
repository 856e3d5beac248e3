//! The daemon's conversation with whoever started it: readiness and status notifications
//! (`notify`), signals turned into events (`signals`), and the SysV daemonization of `--fork`
//! (`daemon`, with its PID file in `pidfile`).

pub(crate) mod daemon;
pub(crate) mod notify;
pub(crate) mod pidfile;
pub(crate) mod signals;
