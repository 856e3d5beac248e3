//! A message's named fields beyond syslog's header (the journal's `_SYSTEMD_UNIT`, the kernel
//! log's `KERNEL_SEQNUM`, what another logger forwarded in `[fields@32473 …]`), held in one
//! allocation: a journal entry has twenty-odd fields, and a pair of boxes each made reading
//! the journal spend a third of its time in malloc and free.
//!
//! Layout, field after field: `NAME_LEN` (u16, little-endian), `VALUE_LEN` (u32), the name's
//! bytes (a journald-style name: ASCII), the value's bytes (anything). Only [`Fields::push`]
//! writes it, so reading it back trusts its own lengths. Pure.

/// Fields being collected, then kept by a message (`Message::with_fields`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    bytes: Vec<u8>,
}

/// A message's fields, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldsRef<'a> {
    bytes: &'a [u8],
}

const HEADER: usize = 2 + 4;

impl Fields {
    /// No fields.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// No fields yet, with room for `bytes` bytes of them (a reader that knows what entries
    /// weigh allocates once).
    pub fn with_capacity(bytes: usize) -> Fields {
        Fields {
            bytes: Vec::with_capacity(bytes),
        }
    }

    /// Adds a field. Only a name journald would take (`message::is_field_name`: `A-Z`, `0-9`,
    /// `_`, at most 64) is kept: every name an encoder meets is plain ASCII.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.push_raw(name.as_bytes(), value);
    }

    /// `name` is a field name.
    fn push_bytes(&mut self, name: &[u8], value: &[u8]) {
        let (Ok(name_len), Ok(value_len)) = (u16::try_from(name.len()), u32::try_from(value.len()))
        else {
            return;
        };
        self.bytes.reserve(HEADER + name.len() + value.len());
        self.bytes.extend_from_slice(&name_len.to_le_bytes());
        self.bytes.extend_from_slice(&value_len.to_le_bytes());
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
    }

    /// Adds a field whose name comes as bytes (from a log being read), as `push`.
    pub fn push_raw(&mut self, name: &[u8], value: &[u8]) {
        if crate::message::is_field_name_bytes(name) {
            self.push_bytes(name, value);
        }
    }

    /// True without any field.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Borrowed, to read.
    pub fn as_ref(&self) -> FieldsRef<'_> {
        FieldsRef { bytes: &self.bytes }
    }

    /// The bytes a message keeps (one allocation, of exactly their size).
    pub(crate) fn into_bytes(self) -> Box<[u8]> {
        self.bytes.into_boxed_slice()
    }
}

impl<'a> FieldsRef<'a> {
    /// The fields a message keeps as `bytes` (`Fields::into_bytes`).
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> FieldsRef<'a> {
        FieldsRef { bytes }
    }

    /// True without any field.
    pub fn is_empty(self) -> bool {
        self.bytes.is_empty()
    }

    /// How many fields.
    pub fn len(self) -> usize {
        self.iter().count()
    }

    /// The fields in the order they were pushed.
    pub fn iter(self) -> Iter<'a> {
        Iter { rest: self.bytes }
    }

    /// The fields with their names as bytes (always UTF-8), for encoders that copy names as
    /// they are without checking them again.
    pub fn iter_raw(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut rest = self.bytes;
        std::iter::from_fn(move || {
            let (name, value, next) = split_field(rest)?;
            rest = next;
            Some((name, value))
        })
    }

    /// The value of the first field named `name`.
    pub fn get(self, name: &str) -> Option<&'a [u8]> {
        let mut rest = self.bytes;
        while let Some((field_name, value, next)) = split_field(rest) {
            if field_name == name.as_bytes() {
                return Some(value);
            }
            rest = next;
        }
        None
    }

    /// What they weigh: their bytes.
    pub fn bytes(self) -> usize {
        self.bytes.len()
    }
}

impl<'a> IntoIterator for FieldsRef<'a> {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The fields one by one: name and value.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<(&'a str, &'a [u8])> {
        let (name, value, rest) = split_field(self.rest)?;
        self.rest = rest;
        // Pushed as a &str: always UTF-8.
        Some((std::str::from_utf8(name).unwrap_or_default(), value))
    }
}

/// The first field's name and value, and what follows it.
fn split_field(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let header = bytes.get(..HEADER)?;
    let name_len = usize::from(u16::from_le_bytes([header[0], header[1]]));
    let value_len = u32::from_le_bytes([header[2], header[3], header[4], header[5]]) as usize;
    let end = HEADER + name_len + value_len;
    let body = bytes.get(HEADER..end)?;
    let (name, value) = body.split_at(name_len);
    Some((name, value, &bytes[end..]))
}

impl<'a> FromIterator<(&'a str, &'a [u8])> for Fields {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a [u8])>>(pairs: I) -> Fields {
        let mut fields = Fields::new();
        for (name, value) in pairs {
            fields.push(name, value);
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_bytes_are_kept_only_if_journald_would_take_them() {
        let mut f = Fields::new();
        for name in [
            &b"MY_FIELD"[..],
            b"lower",
            b"\xff",
            b"",
            b"9LEADING",
            b"A=B",
        ] {
            f.push_raw(name, b"v");
        }
        assert_eq!(
            f.as_ref().iter().collect::<Vec<_>>(),
            [("MY_FIELD", b"v".as_slice())]
        );
        assert_eq!(f.as_ref().iter_raw().count(), 1);
    }

    #[test]
    fn fields_come_back_as_pushed_binary_and_empty_values_too() {
        let mut f = Fields::new();
        assert!(f.is_empty() && f.as_ref().iter().next().is_none());
        f.push("_SYSTEMD_UNIT", b"nginx.service");
        f.push("EMPTY", b"");
        f.push("BINARY", b"\0\xff\n=");
        f.push(&"N".repeat(70_000), b"left out");
        let r = f.as_ref();
        let all: Vec<_> = r.iter().collect();
        assert_eq!(
            all,
            [
                ("_SYSTEMD_UNIT", b"nginx.service".as_slice()),
                ("EMPTY", b""),
                ("BINARY", b"\0\xff\n=")
            ]
        );
        assert_eq!(r.len(), 3);
        assert_eq!(r.get("EMPTY"), Some(b"".as_slice()));
        assert_eq!(r.get("NONE"), None);
        let kept = f.clone().into_bytes();
        assert_eq!(FieldsRef::from_bytes(&kept), r);
        let again: Fields = r.iter().collect();
        assert_eq!(again, f);
    }
}
