//! The configuration file as parsed TOML that remembers where every key and value sits, so that
//! each error names the file and the line; and the readers that turn one TOML value into what a
//! key holds (a string, a list of strings, a size, a duration), each with the error an operator
//! reads.

use std::borrow::Cow;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

pub(super) use toml::Spanned;
pub(super) use toml::de::{DeTable as Table, DeValue as Value};

use super::MAX_DURATION;
use super::values::parse_duration;
use crate::error::Error;

/// A parsed file: its name for messages, its text, and its top-level table.
pub(super) struct Document<'t> {
    origin: String,
    text: &'t str,
    pub root: Table<'t>,
}

impl<'t> Document<'t> {
    /// Parses `text`, read from `origin` (a path, or a name such as "<config>").
    pub(super) fn parse(text: &'t str, origin: String) -> Result<Document<'t>, Error> {
        match Table::parse(text) {
            Ok(root) => Ok(Document {
                origin,
                text,
                root: root.into_inner(),
            }),
            Err(e) => {
                let doc = Document {
                    origin,
                    text,
                    root: Table::default(),
                };
                let message = e.message().trim_end().to_owned();
                Err(match e.span() {
                    Some(span) => doc.error_at(span, &message),
                    None => Error::Config(format!("{}: {message}", doc.origin)),
                })
            }
        }
    }

    /// The file's name, for messages.
    pub(super) fn origin(&self) -> &str {
        &self.origin
    }

    /// `FILE:LINE: what (in `the line`)`.
    pub(super) fn error_at(&self, span: Range<usize>, what: &str) -> Error {
        let start = span.start.min(self.text.len());
        // Bytes, not text: a span is not promised to fall on a character boundary.
        let line = self.text.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let source = self.text.lines().nth(line - 1).unwrap_or("").trim();
        Error::Config(format!("{}:{line}: {what} (in `{source}`)", self.origin))
    }
}

/// What is wrong with a value, and where, when that is a part of it (a key of an `[[output]]`
/// table) rather than the whole value.
#[derive(Debug)]
pub(super) struct Fault {
    pub message: String,
    pub at: Option<Range<usize>>,
}

impl From<String> for Fault {
    fn from(message: String) -> Fault {
        Fault { message, at: None }
    }
}

impl From<&str> for Fault {
    fn from(message: &str) -> Fault {
        Fault::from(message.to_owned())
    }
}

/// A flag's text as the value of its key.
pub(super) fn flag_value(text: &str) -> Value<'_> {
    Value::String(Cow::Borrowed(text))
}

/// A string.
pub(super) fn string<'v>(v: &'v Value<'_>) -> Result<&'v str, String> {
    v.as_str().ok_or_else(|| "must be a string".to_owned())
}

/// A list of strings; one string stands for a list of one.
pub(super) fn strings(v: &Value<'_>) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.get_ref()
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "must be a list of strings".to_owned())
            })
            .collect(),
        _ => Err("must be a list of strings".into()),
    }
}

/// An integer.
pub(super) fn integer(v: &Value<'_>) -> Result<i64, String> {
    v.as_integer()
        .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok())
        .ok_or_else(|| "must be a whole number".to_owned())
}

/// true or false.
pub(super) fn boolean(v: &Value<'_>) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| "must be true or false".to_owned())
}

/// A number of bytes within `range`: an integer, or a string with a binary suffix ("64K",
/// "16M", "1G"; "KiB" and "K" alike).
pub(super) fn size(v: &Value<'_>, range: RangeInclusive<usize>) -> Result<usize, String> {
    let n = match v {
        Value::String(s) => parse_size(s)?,
        _ => integer(v).map_err(|_| "must be a number of bytes".to_owned())?,
    };
    usize::try_from(n)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{n} is outside {}..={} bytes", range.start(), range.end()))
}

fn parse_size(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a size like 65536, 64K, 16M or 1G");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.trim_start() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// A duration ("250ms", "30s", "5m", "1h"); "0" is `None` (off). At most [`MAX_DURATION`].
pub(super) fn duration(v: &Value<'_>) -> Result<Option<Duration>, String> {
    let d = parse_duration(string(v)?)?;
    if d.is_some_and(|d| d > MAX_DURATION) {
        return Err("is longer than 7 days".into());
    }
    Ok(d)
}

/// A duration that cannot be off.
pub(super) fn positive_duration(v: &Value<'_>) -> Result<Duration, String> {
    duration(v)?.ok_or_else(|| "must be greater than 0".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_numbers_and_binary_suffixes_within_their_range() {
        let range = 4096..=1 << 30;
        let v = |s: &str| Value::String(Cow::Owned(s.into()));
        assert_eq!(size(&v("64K"), range.clone()), Ok(65536));
        assert_eq!(size(&v("1 GiB"), range.clone()), Ok(1 << 30));
        assert_eq!(size(&v("16M"), range.clone()), Ok(16 << 20));
        let doc = Document::parse("a = 8192\nb = -1\nc = 2048", "<t>".into()).unwrap();
        let get = |k: &str| doc.root.get(k).unwrap().get_ref().clone();
        assert_eq!(size(&get("a"), range.clone()), Ok(8192));
        assert!(
            size(&get("b"), range.clone())
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            size(&get("c"), range.clone())
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            size(&v("2G"), range.clone())
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            size(&v("12 parsecs"), range)
                .unwrap_err()
                .contains("not a size")
        );
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let Err(Error::Config(e)) = Document::parse("a = 1\nb = = 2\n", "/etc/x.toml".into())
        else {
            panic!("parsed");
        };
        assert!(
            e.starts_with("/etc/x.toml:2:") && e.contains("b = = 2"),
            "{e}"
        );
    }
}
