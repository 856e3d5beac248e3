//! The configuration parser: any text is a configuration or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logger::cli::Cli;
use logger::config::{Config, Env};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_toml(text, &Cli::default(), &Env::default());
    }
});
