//! The one escaping of the daemon: how bytes that could drive a terminal, forge a line or hide
//! text are written as visible, reversible escapes. Pure.
//!
//! Escapes: `\n`, `\r`, `\t`, `\\`, `\xNN` for other C0 controls, DEL and bytes that are not
//! UTF-8, `\u{NN}` for C1 controls (U+0080–U+009F, ESC's 8-bit cousins), Unicode line separators
//! and, in file lines, the invisible format characters (bidi controls U+202A–U+202E and
//! U+2066–U+2069, zero-width characters, the BOM). `unescape` reverses every form.
//!
//! Two uses, two [`Escaping`]s:
//! - [`RECEIVE`]: what an input does to every header field and text of a message it accepts
//!   (unless `escape-control-characters = false`), so that no output, the journal included,
//!   ever carries a raw control character a remote host or a local user sent: journald forwards
//!   emergency messages to every terminal (ForwardToWall). TAB stays. A message that needed it is
//!   marked (`Message::escaped`, `LOGGER_ESCAPED=1` in the journal), and then its backslashes are
//!   doubled too, so `unescape` gives back exactly what was sent.
//! - [`LINE`]: file and stderr lines, which must also be one line each and show no hidden text.
//!   [`LINE_OF_ESCAPED`] is the same for a field already escaped on receive: its backslashes are
//!   escapes already and stay single, so a file line unescapes to what was sent either way.

/// Which bytes an escaping leaves alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaping {
    /// Write TAB as `\t`.
    pub tab: bool,
    /// Write a backslash as `\\` (false only for text that is escaped already).
    pub backslash: bool,
    /// Escape the invisible format characters (bidi controls, zero-width characters).
    pub format_characters: bool,
}

/// Header fields and text of a message as it is accepted.
pub const RECEIVE: Escaping = Escaping {
    tab: false,
    backslash: true,
    format_characters: false,
};

/// File and stderr lines.
pub const LINE: Escaping = Escaping {
    tab: true,
    backslash: true,
    format_characters: true,
};

/// File and stderr lines, for a field that was escaped on receive.
pub const LINE_OF_ESCAPED: Escaping = Escaping {
    backslash: false,
    ..LINE
};

/// Appends `bytes` to `out`, escaped as `how` says.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8], how: Escaping) {
    escape_with(bytes, how, |piece| out.extend_from_slice(piece));
}

/// The length of `bytes` escaped as `how` says: what to reserve, exactly, before escaping
/// a large text (a 2 MiB message of 0xff bytes escapes to 8 MiB; a buffer grown by doubling
/// on the way would hold 10).
pub fn escaped_len(bytes: &[u8], how: Escaping) -> usize {
    let mut n = 0;
    escape_with(bytes, how, |piece| n += piece.len());
    n
}

/// Hands `bytes`, escaped as `how` says, to `emit` piece by piece.
fn escape_with(bytes: &[u8], how: Escaping, mut emit: impl FnMut(&[u8])) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let plain = plain_prefix_len(rest);
        emit(&rest[..plain]);
        rest = &rest[plain..];
        let Some(&b) = rest.first() else { break };
        if b < 0x80 {
            match b {
                b'\t' if !how.tab => emit(&[b]),
                b'\\' if !how.backslash => emit(&[b]),
                b'\n' => emit(b"\\n"),
                b'\r' => emit(b"\\r"),
                b'\t' => emit(b"\\t"),
                b'\\' => emit(b"\\\\"),
                _ => emit(&hex(b)),
            }
            rest = &rest[1..];
            continue;
        }
        let (c, len) = next_char(rest);
        match c {
            Some(c) if is_escaped_char(c, how) => {
                emit(format!("\\u{{{:x}}}", c as u32).as_bytes());
            }
            Some(_) => emit(&rest[..len]),
            None => emit(&hex(b)),
        }
        rest = &rest[len..];
    }
}

/// True if every byte of `bytes` is printable ASCII and none is a backslash: no [`Escaping`]
/// changes them. A word at a time.
pub fn is_plain(bytes: &[u8]) -> bool {
    plain_prefix_len(bytes) == bytes.len()
}

/// True if escaping `bytes` as [`RECEIVE`] would change anything other than backslashes: the
/// check every accepted message gets, a word at a time while the bytes are plain ASCII.
pub fn needs_receive_escape(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        rest = &rest[plain_prefix_len(rest)..];
        let Some(&b) = rest.first() else {
            return false;
        };
        if b < 0x80 {
            if b != b'\t' && b != b'\\' {
                return true;
            }
            rest = &rest[1..];
            continue;
        }
        match next_char(rest) {
            (Some(c), len) if !is_escaped_char(c, RECEIVE) => rest = &rest[len..],
            _ => return true,
        }
    }
}

/// Reverses `escape_into` (any [`Escaping`]): the original bytes, or None if `escaped` is not
/// something `escape_into` produces. For tools that read the files back, and for tests.
pub fn unescape(escaped: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        if escaped[i] != b'\\' {
            out.push(escaped[i]);
            i += 1;
            continue;
        }
        match *escaped.get(i + 1)? {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = std::str::from_utf8(escaped.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'u' if escaped.get(i + 2) == Some(&b'{') => {
                let close = i + escaped[i..].iter().position(|&b| b == b'}')?;
                let hex = std::str::from_utf8(&escaped[i + 3..close]).ok()?;
                let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i = close - 1;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

/// True for a character the file escaping writes as an escape: C0 and C1 controls, DEL, line
/// separators and the invisible format characters. Other encoders (JSON) use it to escape the
/// same set their own way.
pub fn is_control_or_invisible(c: char) -> bool {
    c < ' ' || c == '\u{7f}' || is_escaped_char(c, LINE)
}

/// Characters written as `\u{..}`: C1 controls and line separators always; the invisible format
/// characters (Unicode category Cf that reorder or hide text) where `how` asks.
fn is_escaped_char(c: char, how: Escaping) -> bool {
    let always = matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}');
    let format = matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    );
    always || (how.format_characters && format)
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'\\' || b >= 0x7f
}

/// The length of the prefix of plain ASCII (no control byte, DEL, backslash or byte above
/// 0x7f). Eight bytes at a time: a word passes when none of its bytes is below 0x20, is 0x7f or
/// above, or is a backslash (SWAR "has byte" tests; a word that fails is rescanned byte by byte,
/// so a false alarm only costs speed).
fn plain_prefix_len(bytes: &[u8]) -> usize {
    prefix_without(bytes, b'\\')
}

/// The length of the longest prefix of `bytes` that a JSON string holds as it is: printable
/// ASCII but `"` and `\\`. A word at a time, as `plain_prefix_len`.
pub fn json_plain_prefix_len(bytes: &[u8]) -> usize {
    prefix_without(bytes, b'"')
}

/// The longest prefix of printable ASCII with neither a backslash nor `other`.
#[inline]
fn prefix_without(bytes: &[u8], other: u8) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64, byte: u8| {
        let x = w ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x
    };
    let mut i = 0;
    for word in bytes.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let high_or_del = w | w.wrapping_add(ONES);
        if (control | high_or_del | has(w, b'\\') | has(w, other)) & HIGH != 0 {
            break;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| needs_escape(b) || b == other)
        .unwrap_or(bytes.len() - i)
}

/// The character at the start of `bytes` (which starts with a byte above 0x7f) and its length,
/// or None and 1 for a byte that does not start valid UTF-8.
fn next_char(bytes: &[u8]) -> (Option<char>, usize) {
    let want = match bytes[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    };
    let len = want.min(bytes.len());
    match std::str::from_utf8(&bytes[..len])
        .ok()
        .and_then(|s| s.chars().next())
    {
        Some(c) => (Some(c), len),
        None => (None, 1),
    }
}

/// `\xNN` for a byte.
fn hex(b: u8) -> [u8; 4] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_at_a_time_prefixes_stop_where_the_byte_rule_does() {
        for special in [b'"', b'\\', 0x1f, 0x7f, 0x80, 0xff, b'\t'] {
            for at in 0..20 {
                let mut bytes = b"abcdefghijklmnopqrstuvwxyz".to_vec();
                bytes[at] = special;
                let json = json_plain_prefix_len(&bytes);
                let plain = plain_prefix_len(&bytes);
                assert_eq!(json, at, "json, {special:#x} at {at}");
                let expected = if special == b'"' { bytes.len() } else { at };
                assert_eq!(plain, expected, "plain, {special:#x} at {at}");
            }
        }
    }

    fn esc(b: &[u8], how: Escaping) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, b, how);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaped_len_is_the_length_escape_into_writes() {
        let inputs: [&[u8]; 6] = [
            b"plain ascii",
            b"\xff\xfe\x00\x1b[31m",
            "tab\there\\ and \u{202e}bidi\u{2028}".as_bytes(),
            b"\xc3\x28 broken utf-8 \xe2\x82",
            b"",
            &[0xff; 3000],
        ];
        for bytes in inputs {
            for how in [RECEIVE, LINE, LINE_OF_ESCAPED] {
                let mut out = Vec::new();
                escape_into(&mut out, bytes, how);
                assert_eq!(escaped_len(bytes, how), out.len(), "{bytes:?}");
            }
        }
    }

    #[test]
    fn lines_escape_everything_that_could_forge_a_line_drive_a_terminal_or_hide_text() {
        assert_eq!(esc(b"plain text", LINE), "plain text");
        assert_eq!(
            esc(b"a\nfake 2026 line\r\tb", LINE),
            "a\\nfake 2026 line\\r\\tb"
        );
        assert_eq!(esc(b"\x1b[31mred\x1b[0m", LINE), "\\x1b[31mred\\x1b[0m");
        assert_eq!(esc(b"nul\0del\x7f", LINE), "nul\\x00del\\x7f");
        assert_eq!(esc(b"back\\slash", LINE), "back\\\\slash");
        assert_eq!(esc("héllo ✓".as_bytes(), LINE), "héllo ✓");
        assert_eq!(
            esc(b"bad \xff\xfe end \xe2\x82", LINE),
            "bad \\xff\\xfe end \\xe2\\x82"
        );
        assert_eq!(
            esc("csi \u{9b}31m ls\u{2028}x".as_bytes(), LINE),
            "csi \\u{9b}31m ls\\u{2028}x"
        );
        // Trojan Source: a right-to-left override and an isolate would reorder what a reader sees.
        assert_eq!(
            esc(
                "user\u{202e}nimda\u{2066}x\u{2069}\u{200b}".as_bytes(),
                LINE
            ),
            "user\\u{202e}nimda\\u{2066}x\\u{2069}\\u{200b}"
        );
    }

    #[test]
    fn receive_escaping_keeps_tab_and_format_characters_and_reverses() {
        let sent = "tab\there \x1b]0;pwned\x07 \u{9b}2J back\\slash \u{202e}rtl".as_bytes();
        let mut out = Vec::new();
        escape_into(&mut out, sent, RECEIVE);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "tab\there \\x1b]0;pwned\\x07 \\u{9b}2J back\\\\slash \u{202e}rtl"
        );
        assert_eq!(unescape(&out).as_deref(), Some(sent));
        // A file line of that field: backslashes stay single, the rest is escaped as in a line.
        let mut line = Vec::new();
        escape_into(&mut line, &out, LINE_OF_ESCAPED);
        assert_eq!(unescape(&line).as_deref(), Some(sent));
    }

    #[test]
    fn the_receive_check_agrees_with_the_escaping() {
        let samples: [&[u8]; 9] = [
            b"plain",
            b"tab\tand back\\slash",
            b"esc \x1b",
            b"nul \0",
            b"del \x7f",
            "utf-8 ✓ é".as_bytes(),
            "c1 \u{85}".as_bytes(),
            b"bad \xff",
            "bidi \u{202e} is for lines only".as_bytes(),
        ];
        for s in samples {
            let mut out = Vec::new();
            escape_into(&mut out, s, RECEIVE);
            let changed = out.iter().filter(|&&b| b == b'\\').count()
                != s.iter().filter(|&&b| b == b'\\').count() * 2;
            assert_eq!(needs_receive_escape(s), changed, "{s:?}");
        }
    }

    #[test]
    fn the_word_at_a_time_scan_agrees_with_the_byte_test() {
        let mut data: Vec<u8> = (0..=255u8).collect();
        data.extend_from_slice(b"plain ascii text, long enough for several words");
        for start in 0..data.len() {
            for len in [0, 1, 7, 8, 9, 16, 33] {
                let slice = &data[start..(start + len).min(data.len())];
                let expected = slice
                    .iter()
                    .position(|&b| needs_escape(b))
                    .unwrap_or(slice.len());
                assert_eq!(plain_prefix_len(slice), expected, "at {start}+{len}");
            }
        }
    }
}
