//! End-to-end tests of the real `logger` binary, driven the way operators and clients drive it.
//! One test binary (like `just`'s tests/lib.rs) so the harness is compiled once; it runs under
//! our own small runner (`harness`), which reports a test whose requirement is missing as
//! ignored, with the reason.

#[macro_use]
mod harness;
#[macro_use]
mod support;

mod client;
mod debian;
mod faults;
mod fork;
mod forward;
mod hostile;
mod inputs;
mod journal;
mod journal_remote;
mod kafka;
mod kmsg;
mod lan;
mod lifecycle;
mod operability;
mod outputs;
mod relp;
mod supervisors;
mod systemd;
mod tls;

fn main() -> std::process::ExitCode {
    harness::main(
        &[
            client::TESTS,
            debian::TESTS,
            faults::TESTS,
            fork::TESTS,
            forward::TESTS,
            hostile::TESTS,
            inputs::TESTS,
            journal::TESTS,
            journal_remote::TESTS,
            kafka::TESTS,
            kmsg::TESTS,
            lan::TESTS,
            lifecycle::TESTS,
            operability::TESTS,
            outputs::TESTS,
            relp::TESTS,
            supervisors::TESTS,
            tls::TESTS,
        ],
        &[systemd::SCENARIOS],
    )
}
