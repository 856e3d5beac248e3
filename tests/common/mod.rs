//! What the manifest tests (`package.rs`, `map.rs`) share: the crates a package is built from.

use std::process::Command;

/// `cargo tree` of `package`'s normal dependencies on x86_64 Linux, one line per crate (no
/// tree drawing), each as `format` says (`{p}`, `{p}|{l}`). Offline and locked: what the
/// build uses, not what the registry would offer.
pub fn cargo_tree(package: &str, format: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "-f", format])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
