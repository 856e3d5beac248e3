//! The `logger` binary: everything lives in the library; this only hands over the exit status.

fn main() -> std::process::ExitCode {
    logger::main()
}
