//! The encodings of the file and stderr outputs, one module per `format`: `detailed`
//! ([`line`], reversible escapes), `traditional` and `rfc3339` ([`rsyslog`], rsyslog's lines
//! byte for byte), [`rfc5424`] and [`json`]; and [`export`], the Journal Export Format of the
//! journal-remote output. Pure: a message in, bytes appended.

pub mod export;
pub mod json;
pub mod line;
pub mod rfc5424;
pub mod rsyslog;
