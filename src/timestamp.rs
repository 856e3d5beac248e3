//! Times as lines write them: a sender's timestamp read into calendar fields, a time zone's
//! offset, and the date forms of rsyslog's file formats (`Dec  7 15:37:24`,
//! `2026-12-07T15:37:24.220587+01:00`).
//!
//! Pure but for the local zone's offset, which `sys` asks the C library for (TZ, else
//! /etc/localtime) at most once per quarter hour per thread: every zone changes its offset on a
//! quarter hour, so the cached answer holds until the next one. Nothing here reads the time zone
//! database per message.

use std::cell::Cell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use syslog::message::Message;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The zone of the times a line writes without the sender's own: when it was received, and
/// the zone a BSD timestamp (which names none) is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The host's zone (TZ, else /etc/localtime), as rsyslog writes its files.
    #[default]
    Local,
    /// UTC (`+00:00`).
    Utc,
}

impl Zone {
    /// Seconds east of UTC at `unix_secs`.
    pub fn offset_at(self, unix_secs: i64) -> i32 {
        thread_local! {
            /// The quarter hour last asked about on this thread and the local offset then.
            static LAST: Cell<(i64, i32)> = const { Cell::new((i64::MIN, 0)) };
        }
        match self {
            Zone::Utc => 0,
            Zone::Local => LAST.with(|last| {
                let quarter = unix_secs.div_euclid(900);
                let (cached, offset) = last.get();
                if cached == quarter {
                    return offset;
                }
                let offset = crate::sys::local_utc_offset(unix_secs);
                last.set((quarter, offset));
                offset
            }),
        }
    }
}

impl std::str::FromStr for Zone {
    type Err = String;
    fn from_str(s: &str) -> Result<Zone, String> {
        match s {
            "local" => Ok(Zone::Local),
            "UTC" | "utc" => Ok(Zone::Utc),
            _ => Err(format!("'{s}' is not a time zone: local or UTC")),
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Zone::Local => "local",
            Zone::Utc => "UTC",
        })
    }
}

/// A date and time of day as written in some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year (four digits are written).
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=60 (a leap second as sent).
    pub second: u32,
}

impl Civil {
    /// The calendar fields of `unix_secs + offset`.
    pub fn at(unix_secs: i64, offset: i32) -> Civil {
        let local = unix_secs + i64::from(offset);
        let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// What a sender's timestamp says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderTime<'a> {
    /// A complete RFC 3339 time (RFC 5424's TIMESTAMP, or rsyslog's forwarding form inside a
    /// BSD header), its text as sent.
    Rfc3339 {
        /// The text as sent, checked to be RFC 3339.
        text: &'a [u8],
        /// Its date and time of day, in its own offset.
        civil: Civil,
    },
    /// A BSD timestamp, `Mmm dd [yyyy] hh:mm:ss[.fraction]`: no zone, and usually no year.
    Bsd {
        /// The fields; `year` is 0 when the sender wrote none.
        civil: Civil,
        /// The fraction's digits as sent (usually none).
        fraction: &'a [u8],
    },
}

impl<'a> SenderTime<'a> {
    /// When a message says it happened: a network sender's timestamp, if readable. A local
    /// one's is not used (syslog(3) writes whole seconds, and rsyslog's imuxsock ignores it
    /// too): the receive time is the better account of it.
    pub fn of(msg: &'a Message) -> Option<SenderTime<'a>> {
        match msg.origin.transport.is_local() {
            true => None,
            false => SenderTime::read(msg.timestamp_bytes()),
        }
    }

    /// Appends it as RFC 3339: as sent, or a BSD time with the year rsyslog would guess and
    /// `zone`'s offset when it was `received`.
    pub fn push_rfc3339(&self, out: &mut Vec<u8>, received: SystemTime, zone: Zone) {
        match *self {
            SenderTime::Rfc3339 { text, .. } => out.extend_from_slice(text),
            SenderTime::Bsd {
                mut civil,
                fraction,
            } => {
                let now = Moment::of(received, zone);
                if civil.year == 0 {
                    civil.year = infer_year(civil.month, &now.civil);
                }
                push_date_time(out, &civil);
                if !fraction.is_empty() {
                    out.push(b'.');
                    out.extend_from_slice(fraction);
                }
                push_offset(out, now.offset);
            }
        }
    }

    /// Its date and time of day as written (a BSD time's year may be 0).
    pub fn civil(&self) -> &Civil {
        match self {
            SenderTime::Rfc3339 { civil, .. } | SenderTime::Bsd { civil, .. } => civil,
        }
    }

    /// Reads a timestamp as the parsers delimit it, or None if it is neither form (a
    /// malformed one is treated as absent: the line then carries the receive time).
    pub fn read(text: &'a [u8]) -> Option<SenderTime<'a>> {
        read_rfc3339(text).or_else(|| read_bsd(text))
    }
}

fn digits(text: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = text.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn read_rfc3339(text: &[u8]) -> Option<SenderTime<'_>> {
    let sep = |at: usize, c: &[u8]| text.get(at).is_some_and(|b| c.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let civil = Civil {
        year: i64::from(digits(text, 0, 4)?),
        month: digits(text, 5, 2)?,
        day: digits(text, 8, 2)?,
        hour: digits(text, 11, 2)?,
        minute: digits(text, 14, 2)?,
        second: digits(text, 17, 2)?,
    };
    let mut i = 19;
    if text.get(i) == Some(&b'.') {
        let n = text[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=9).contains(&n) {
            return None;
        }
        i += 1 + n;
    }
    let zone_ok = match text.get(i) {
        Some(b'Z' | b'z') => i + 1 == text.len(),
        Some(b'+' | b'-') => {
            i + 6 == text.len()
                && digits(text, i + 1, 2).is_some_and(|h| h <= 23)
                && text[i + 3] == b':'
                && digits(text, i + 4, 2).is_some_and(|m| m <= 59)
        }
        _ => false,
    };
    (zone_ok && plausible(&civil)).then_some(SenderTime::Rfc3339 { text, civil })
}

fn read_bsd(text: &[u8]) -> Option<SenderTime<'_>> {
    let month = MONTHS.iter().position(|m| {
        text.get(..3)
            .is_some_and(|t| t.eq_ignore_ascii_case(&m[..]))
    })?;
    let mut words = text[3..].split(|&b| b == b' ').filter(|w| !w.is_empty());
    let day = words.next()?;
    let mut clock = words.next()?;
    let mut year = 0;
    if clock.len() == 4 {
        year = i64::from(digits(clock, 0, 4)?);
        clock = words.next()?;
    }
    if words.next().is_some() || !(1..=2).contains(&day.len()) {
        return None;
    }
    let (clock, fraction) = match clock.iter().position(|&b| b == b'.') {
        Some(dot) => (&clock[..dot], &clock[dot + 1..]),
        None => (clock, &clock[clock.len()..]),
    };
    if clock.len() != 8 || clock[2] != b':' || clock[5] != b':' {
        return None;
    }
    let civil = Civil {
        year,
        month: month as u32 + 1,
        day: digits(day, 0, day.len())?,
        hour: digits(clock, 0, 2)?,
        minute: digits(clock, 3, 2)?,
        second: digits(clock, 6, 2)?,
    };
    let fraction_ok = fraction.iter().all(u8::is_ascii_digit);
    (fraction_ok && plausible(&civil)).then_some(SenderTime::Bsd { civil, fraction })
}

fn plausible(c: &Civil) -> bool {
    (1..=12).contains(&c.month)
        && (1..=31).contains(&c.day)
        && c.hour <= 23
        && c.minute <= 59
        && c.second <= 60
}

/// The year a BSD timestamp of `month` means when it arrives at `now`: this year, as rsyslog
/// reads it, but last year for December's messages read in January (rsyslog 8.2302 would put
/// a message of December 31st read just after midnight nearly a year ahead).
pub fn infer_year(month: u32, now: &Civil) -> i64 {
    match (month, now.month) {
        (12, 1) => now.year - 1,
        _ => now.year,
    }
}

/// Appends `Mmm dd hh:mm:ss` (the day padded with a space), rsyslog's `date-rfc3164`.
pub fn push_bsd(out: &mut Vec<u8>, c: &Civil) {
    out.extend_from_slice(MONTHS[(c.month.clamp(1, 12) - 1) as usize]);
    out.push(b' ');
    out.push(if c.day < 10 {
        b' '
    } else {
        b'0' + (c.day / 10) as u8
    });
    out.push(b'0' + (c.day % 10) as u8);
    out.push(b' ');
    push_clock(out, c);
}

/// Appends `YYYY-MM-DDThh:mm:ss`.
pub fn push_date_time(out: &mut Vec<u8>, c: &Civil) {
    push_digits(out, c.year.clamp(0, 9999) as u64, 4);
    out.push(b'-');
    push_digits(out, u64::from(c.month), 2);
    out.push(b'-');
    push_digits(out, u64::from(c.day), 2);
    out.push(b'T');
    push_clock(out, c);
}

fn push_clock(out: &mut Vec<u8>, c: &Civil) {
    push_digits(out, u64::from(c.hour), 2);
    out.push(b':');
    push_digits(out, u64::from(c.minute), 2);
    out.push(b':');
    push_digits(out, u64::from(c.second), 2);
}

/// Appends an offset as RFC 3339 writes it, `+01:00` (rsyslog writes `+00:00` for UTC too).
pub fn push_offset(out: &mut Vec<u8>, offset: i32) {
    out.push(if offset < 0 { b'-' } else { b'+' });
    let minutes = offset.unsigned_abs() / 60;
    push_digits(out, u64::from(minutes / 60), 2);
    out.push(b':');
    push_digits(out, u64::from(minutes % 60), 2);
}

fn push_digits(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut n = n;
    for d in buf[20 - width..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[20 - width..]);
}

/// A moment split for the zoned forms: seconds since the epoch, microseconds, and the zone's
/// offset and calendar fields then. Computed once a second per thread and zone.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// The zone's offset from UTC, in seconds east.
    pub offset: i32,
    /// The calendar fields in that zone.
    pub civil: Civil,
    /// Microseconds into the second.
    pub micros: u32,
}

impl Moment {
    /// `t` in `zone`.
    pub fn of(t: SystemTime, zone: Zone) -> Moment {
        thread_local! {
            /// The last second split on this thread, in which zone, and its fields.
            static LAST: Cell<(i64, Zone, i32, Civil)> = const {
                Cell::new((i64::MIN, Zone::Utc, 0, Civil {
                    year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0,
                }))
            };
        }
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as i64;
        let (offset, civil) = LAST.with(|last| {
            let (cached, cached_zone, offset, civil) = last.get();
            if cached == secs && cached_zone == zone {
                return (offset, civil);
            }
            let offset = zone.offset_at(secs);
            let civil = Civil::at(secs, offset);
            last.set((secs, zone, offset, civil));
            (offset, civil)
        });
        Moment {
            offset,
            civil,
            micros: since.subsec_micros(),
        }
    }

    /// Appends `YYYY-MM-DDThh:mm:ss.ffffff+hh:mm`, rsyslog's `date-rfc3339` of a time it
    /// stamped itself.
    pub fn push_rfc3339(&self, out: &mut Vec<u8>) {
        push_date_time(out, &self.civil);
        out.push(b'.');
        push_digits(out, u64::from(self.micros), 6);
        push_offset(out, self.offset);
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of `civil_from_days`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since the epoch of a complete RFC 3339 time (`2026-12-07T15:37:24.000001Z`,
/// `...+01:00`); None for anything else.
pub fn rfc3339_usec(text: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(text).ok()?;
    let (date, rest) = t.split_once('T').or_else(|| t.split_once('t'))?;
    let mut parts = date.splitn(3, '-');
    let (y, mo, d) = (
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<u32>().ok()?,
        parts.next()?.parse::<u32>().ok()?,
    );
    if rest.len() < 8 {
        return None;
    }
    let (h, mi, sec) = (
        rest.get(0..2)?.parse::<i64>().ok()?,
        rest.get(3..5)?.parse::<i64>().ok()?,
        rest.get(6..8)?.parse::<i64>().ok()?,
    );
    let mut rest = &rest[8..];
    let mut usec = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut scale = 100_000;
        for b in frac[..digits].bytes().take(6) {
            usec += u64::from(b - b'0') * scale;
            scale /= 10;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh = rest.get(1..3)?.parse::<i64>().ok()?;
            let om = rest.get(4..6)?.parse::<i64>().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(usec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_times_read_as_microseconds_since_the_epoch() {
        assert_eq!(rfc3339_usec(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_usec(b"2026-12-07T15:37:24.000001Z"),
            Some(1_796_657_844_000_001)
        );
        assert_eq!(
            rfc3339_usec(b"2026-12-07T16:37:24.5+01:00"),
            Some(1_796_657_844_500_000)
        );
        assert_eq!(rfc3339_usec(b"Dec  7 15:37:24"), None);
        for days in [-1000, 0, 19_000, 20_794, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sender_times_are_read_in_both_forms_and_nonsense_is_absent() {
        let Some(SenderTime::Rfc3339 { civil, .. }) =
            SenderTime::read(b"2020-08-24T05:14:15.000003-07:00")
        else {
            panic!("RFC 3339 not read");
        };
        assert_eq!(
            (civil.year, civil.month, civil.day, civil.hour),
            (2020, 8, 24, 5)
        );
        let Some(SenderTime::Bsd { civil, fraction }) = SenderTime::read(b"Oct 1 01:02:03.25")
        else {
            panic!("BSD not read");
        };
        assert_eq!(
            (civil.year, civil.month, civil.day, civil.second),
            (0, 10, 1, 3)
        );
        assert_eq!(fraction, b"25");
        let Some(SenderTime::Bsd { civil, .. }) = SenderTime::read(b"Apr 15 2007 21:28:13") else {
            panic!("BSD with a year not read");
        };
        assert_eq!(civil.year, 2007);
        for bad in [
            &b"2020-13-24T05:14:15Z"[..],
            b"2020-08-24T05:14:15",
            b"2020-08-24T05:14:15.Z",
            b"2020-08-24T25:14:15Z",
            b"Foo  1 01:02:03",
            b"Oct 41 01:02:03",
            b"Oct  1 01:02",
            b"",
        ] {
            assert_eq!(
                SenderTime::read(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bsd_dates_pad_the_day_with_a_space_as_rsyslog_writes_them() {
        let at = |secs| text(|o| push_bsd(o, &Civil::at(secs, 0)));
        assert_eq!(at(1_796_657_844), "Dec  7 15:37:24");
        assert_eq!(at(1_763_929_306), "Nov 23 20:21:46");
    }

    #[test]
    fn zoned_rfc3339_writes_microseconds_and_the_offset() {
        let t = UNIX_EPOCH + Duration::from_micros(1_796_657_844_220_587);
        assert_eq!(
            text(|o| Moment::of(t, Zone::Utc).push_rfc3339(o)),
            "2026-12-07T15:37:24.220587+00:00"
        );
        assert_eq!(text(|o| push_offset(o, -(7 * 3600 + 30 * 60))), "-07:30");
        assert_eq!(text(|o| push_offset(o, 3600)), "+01:00");
    }

    #[test]
    fn a_year_is_this_one_but_decembers_read_in_january() {
        let now = |month| Civil {
            year: 2026,
            month,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(infer_year(12, &now(1)), 2025);
        assert_eq!(infer_year(1, &now(12)), 2026);
        assert_eq!(infer_year(6, &now(7)), 2026);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
    }
}
