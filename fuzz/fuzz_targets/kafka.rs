//! What a Kafka broker answers, as the Kafka output reads it (a response body after its length:
//! the header, then an ApiVersions, Metadata, InitProducerId or Produce answer): arbitrary
//! bytes give an answer or an error, never a panic, and never reserve more than they weigh
//! (libFuzzer's -rss_limit_mb catches an allocation from a length on the wire). A broker is a
//! peer on the network: a broken or hostile one must not take a host's logging down.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logger::outputs::kafka::answers::decode_any(data);
});
