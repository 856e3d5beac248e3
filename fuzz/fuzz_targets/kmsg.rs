//! /dev/kmsg records (what the kernel log input reads; a local writer to /dev/kmsg chooses the
//! text): records separated by NUL bytes in the input, each decoded; priority and facility in
//! range, the text no longer than the record, dictionary keys journald-style; and the joiner of
//! continued lines hands back every record's sequence number once, in order, whatever the flags.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syslog::parse::kmsg::{Joiner, Record, unescape_kernel};

fuzz_target!(|data: &[u8]| {
    let mut joiner = Joiner::default();
    let mut fed = Vec::new();
    let mut out = Vec::new();
    for raw in data.split(|&b| b == 0) {
        assert!(
            unescape_kernel(raw).len() <= raw.len(),
            "unescaping grew the text"
        );
        let Some(record) = Record::parse(raw) else {
            continue;
        };
        assert!(record.priority <= 7 && record.facility <= 23, "{record:?}");
        assert!(record.text.len() <= raw.len());
        for (key, _) in &record.dictionary {
            assert!(
                !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{key:?}"
            );
        }
        fed.push(record.seq);
        out.extend(joiner.push(record));
    }
    out.extend(joiner.finish());
    let mut back = Vec::new();
    for r in &out {
        back.push(r.seq);
        back.extend(&r.joined);
    }
    assert_eq!(back, fed, "every record once, in order");
});
