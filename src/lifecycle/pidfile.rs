//! The PID file of `--fork`.
