//! Lays out the code a quiet daemon runs together at the start of the binary's code, by
//! passing `link/idle-code.ld` to the linker (binaries only). A third of an idle daemon's
//! resident size is mapped pages of its own binary, and the kernel maps them 64 KiB at a time
//! around each page touched: grouped, the same code costs half the pages. The script only adds an output
//! section after `.init` (`INSERT`); everything else keeps the linker's default layout.
//! `link/profile-idle` writes it; a function it does not name costs pages, never correctness.

fn main() {
    println!("cargo::rerun-if-changed=link/idle-code.ld");
    // Linux binaries are ELF, linked by GNU ld or lld: both take INSERT scripts.
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo::rustc-link-arg-bins=-Wl,-T,{dir}/link/idle-code.ld");
    }
}
