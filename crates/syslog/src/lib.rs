//! logger's pure part: bytes in, messages out, and the codecs of every protocol it reads.
//!
//! Nothing here does I/O, spawns a thread or depends on a crate that could (its `Cargo.toml`
//! lists only crates that compute, and `tests/map.rs` in the daemon keeps it so): the invariant "parsing
//! never does I/O" is held by the dependency graph. Every decoder here faces the network or the
//! disk and has a fuzz target (`fuzz/`); none panics on any input.
//!
//! # Map
//!
//! - [`message`]: the model every input produces and every output consumes: one copy of the
//!   bytes, the header fields as spans of it; [`fields`]: its named fields, in one allocation.
//! - [`parse`]: bytes → [`message::Message`] (`parse::rfc5424`, `parse::rfc3164` with
//!   syslog(3)'s local form);
//!   [`parse::export`]: the Journal Export Format read back (what systemd-journal-upload sends);
//!   [`parse::kmsg`]: /dev/kmsg records.
//! - [`framing`]: RFC 6587 stream framing. [`relp`]: RELP frames both ways;
//!   [`relp::server`]: the server's side of a session (transactions in sequence, answers owed).
//! - [`escape`]: the one reversible escaping of control and invisible characters.
//! - [`queue_record`]: the disk queue's records (messages and read positions, checksummed).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod escape;
pub mod fields;
pub mod framing;
pub mod message;
pub mod parse;
pub mod queue_record;
pub mod relp;
