//! `--fork`: the SysV daemonization of daemon(7). Filled in by the --fork work.

use crate::config::Config;
use crate::error::Result;
use crate::lifecycle::notify::Notifier;
use crate::sources::Listener;

/// Daemonizes; returns in the daemon process only.
pub fn daemonize(
    _config: &Config,
    _listeners: &[Listener],
    _notifier: &mut Notifier,
) -> Result<()> {
    Ok(())
}
