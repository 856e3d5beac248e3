//! The Debian package's own files say what is true: `packaging/debian/copyright` names exactly
//! the crates compiled into the binary with their licenses (regenerate it with
//! `packaging/debian/update-copyright`), and the changelog's newest entry is this version.

mod common;

use std::path::Path;

fn manifest(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn the_copyright_file_names_every_crate_compiled_in() {
    let tree = common::cargo_tree("logger", "{p}|{l}");
    let mut built: Vec<String> = tree
        .lines()
        .map(|l| l.replace(" (*)", "").replace(" (proc-macro)", ""))
        .filter(|l| !l.starts_with("logger ") && !l.starts_with("logger-syslog "))
        .map(|l| {
            let (krate, license) = l.split_once('|').unwrap();
            format!("{krate}: {license}")
        })
        .collect();
    built.sort();
    built.dedup();
    let copyright = manifest("packaging/debian/copyright");
    let mut listed: Vec<String> = copyright
        .lines()
        .filter(|l| l.starts_with(' ') && l.contains(" v") && l.contains(": "))
        .map(|l| l.trim().to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed, built,
        "packaging/debian/copyright is stale: run packaging/debian/update-copyright"
    );
    assert!(!copyright.contains("missing"), "{copyright}");
}

#[test]
fn the_changelog_describes_this_version() {
    let changelog = manifest("packaging/debian/changelog");
    let first = changelog.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("logger ({}-", env!("CARGO_PKG_VERSION"))),
        "the changelog's newest entry is not {}: {first}",
        env!("CARGO_PKG_VERSION")
    );
}
