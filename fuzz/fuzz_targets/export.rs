//! The Journal Export Format reader (what systemd-journal-upload POSTs to a `journal-remote://`
//! input) fed in arbitrary chunkings: the same entries and the same verdict whatever the cuts,
//! no value over its bound, no entry over the entry's, no panic. The first byte chooses the
//! bound, the next eight the cut points.
#![no_main]
#[path = "cuts.rs"]
mod cuts;
use libfuzzer_sys::fuzz_target;
use syslog::parse::export::{ENTRY_FIELDS_MAX, ExportReader};

type Entries = (
    Vec<(Option<u64>, Vec<u8>, Vec<(String, Vec<u8>)>, bool)>,
    Option<String>,
);

fn entries(max: usize, chunks: &[&[u8]]) -> Entries {
    let mut reader = ExportReader::new(max);
    let mut out = Vec::new();
    for c in chunks {
        let result = reader.feed(c, |e| {
            assert!(e.message.len() <= max, "a MESSAGE over the bound was kept");
            let fields: Vec<(String, Vec<u8>)> = e
                .fields
                .as_ref()
                .iter()
                .map(|(n, v)| {
                    assert!(v.len() <= max, "a value over the bound was kept");
                    (n.to_owned(), v.to_vec())
                })
                .collect();
            let names: usize = fields.iter().map(|(n, v)| n.len() + v.len()).sum();
            assert!(
                names <= max * ENTRY_FIELDS_MAX + 64 + max,
                "an entry kept more than its bound"
            );
            out.push((e.realtime_usec, e.message, fields, e.truncated));
        });
        if let Err(e) = result {
            return (out, Some(e.0));
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let max = 1 + usize::from(data[0]);
    let (cuts, stream) = data[1..].split_at(8);
    let chunks = cuts::chunks(cuts, stream);
    assert_eq!(
        entries(max, &chunks),
        entries(max, &[stream]),
        "entries depend on the cuts"
    );
});
