//! Every syslog form, every transport: parsing never panics, priorities stay in range, the
//! text is a piece of the input, and parsing bytes a reader owns gives the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syslog::message::{Origin, Transport};
use syslog::parse::{parse, parse_owned};

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
        let owned = parse_owned(
            data.to_vec(),
            Origin::new(transport),
            std::time::SystemTime::UNIX_EPOCH,
            false,
        );
        assert_eq!(owned, msg);
    }
});
