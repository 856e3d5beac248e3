//! End-to-end tests of the real `logger` binary, driven the way operators and clients drive it.
//! One test binary (like `just`'s tests/lib.rs) so the harness is compiled once.

#[macro_use]
mod support;

mod client;
mod faults;
mod fork;
mod hostile;
mod inputs;
mod lifecycle;
mod supervisors;
mod systemd;
