//! RFC 5424: `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]` after `<PRI>1 `.

use super::{Fields, split_token};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Finds the fields of the header after the version. A header cut short keeps what was read; a
/// malformed STRUCTURED-DATA is left in the text rather than guessed at.
pub(super) fn parse_header(input: &[u8], fields: &mut Fields<'_>) {
    let mut rest = input;
    let mut next = || {
        let (token, after) = split_token(rest);
        rest = after;
        // NILVALUE: absent, like an empty span.
        if token == b"-" { &token[..0] } else { token }
    };
    fields.spans.timestamp = fields.span(next());
    fields.spans.hostname = fields.span(next());
    fields.spans.app_name = fields.span(next());
    fields.spans.procid = fields.span(next());
    fields.spans.msgid = fields.span(next());
    let rest = if let Some(after) = rest.strip_prefix(b"-") {
        after
    } else if rest.first() == Some(&b'[') {
        match structured_data_len(rest) {
            Some(len) => {
                fields.spans.structured_data = fields.span(&rest[..len]);
                &rest[len..]
            }
            None => rest,
        }
    } else {
        rest
    };
    let text = rest.strip_prefix(b" ").unwrap_or(rest);
    fields.spans.text = fields.span(text.strip_prefix(BOM).unwrap_or(text));
}

/// The length of the SD-ELEMENTs at the start of `input`, or None if they are not closed.
/// Inside a quoted PARAM-VALUE, `\"`, `\\` and `\]` are escapes and `]` does not close.
fn structured_data_len(input: &[u8]) -> Option<usize> {
    let mut i = 0;
    while input.get(i) == Some(&b'[') {
        let mut quoted = false;
        i += 1;
        loop {
            match *input.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    Some(i)
}
