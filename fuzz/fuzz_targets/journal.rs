//! The journal native-protocol encoder: whatever a message holds, the entry decodes back to the
//! same MESSAGE and PRIORITY, and no field name starts with an underscore.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logger::outputs::journal::{decode, encode};
use syslog::message::{Origin, Transport};
use syslog::parse::parse;

fuzz_target!(|data: &[u8]| {
    let msg = parse(
        data,
        Origin::new(Transport::Udp),
        std::time::SystemTime::UNIX_EPOCH,
        false,
    );
    let mut entry = Vec::new();
    encode(&mut entry, &msg);
    let fields = decode(&entry).expect("our own entry must decode");
    assert!(fields.iter().all(|(k, _)| !k.starts_with('_')));
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("MESSAGE"), Some(msg.text().to_vec()));
    assert_eq!(get("PRIORITY"), Some(vec![b'0' + msg.severity]));
});
