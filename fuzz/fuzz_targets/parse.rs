//! Every syslog form, every transport: parsing never panics, priorities stay in range, and the
//! text is a piece of the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syslog::message::{Origin, Transport};
use syslog::parse::parse;

fuzz_target!(|data: &[u8]| {
    for transport in [Transport::UnixDatagram, Transport::Udp, Transport::Tcp] {
        let msg = parse(
            data,
            Origin::new(transport),
            std::time::SystemTime::UNIX_EPOCH,
            false,
        );
        assert!(msg.facility <= 23 && msg.severity <= 7);
        assert!(msg.text().is_empty() || data.windows(msg.text().len()).any(|w| w == msg.text()));
    }
});
