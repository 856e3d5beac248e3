//! The maps held to the territory: every module of both crates is named in its crate's doc
//! comment (top-level modules of the daemon in `src/lib.rs`, every module of the pure crate in
//! `crates/syslog/src/lib.rs`) and in ARCHITECTURE.md's code map, every integration test module
//! in its Tests section; and the pure crate depends on nothing that could do I/O.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The crates the pure crate may be built from: its own and what only computes.
const PURE_DEPENDENCIES: &[&str] = &["logger-syslog", "crc32fast", "cfg-if"];

/// Every module under `dir` (a crate's `src`) by its path (`outputs::forward::link`): one per
/// file, `mod.rs` naming its directory; unit-test files and the crate roots left out.
fn modules(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().unwrap() != "tests" {
                    pending.push(path);
                }
                continue;
            }
            let relative = path.strip_prefix(dir).unwrap().with_extension("");
            let parts: Vec<&str> = relative.iter().map(|p| p.to_str().unwrap()).collect();
            let parts = match parts.split_last() {
                Some((&"mod", parent)) => parent.to_vec(),
                _ => parts,
            };
            let name = parts.join("::");
            if !matches!(name.as_str(), "lib" | "main") && !name.ends_with("tests") {
                found.insert(name);
            }
        }
    }
    found
}

/// The backticked words of `text` (`` `a::b` `` → `a::b`), brackets of doc links included.
fn backticked(text: &str) -> BTreeSet<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The crate-level doc comment of a `lib.rs`.
fn crate_doc(path: &str) -> String {
    fs::read_to_string(Path::new(ROOT).join(path))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rows of the code map table that follows `heading` in ARCHITECTURE.md: (the module
/// cell, the whole row).
fn map_rows(heading: &str) -> Vec<(String, String)> {
    let text = fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let section = text
        .split_once(heading)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no {heading:?}"))
        .1;
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| (l.split('|').nth(1).unwrap_or("").to_owned(), l.to_owned()))
        .collect()
}

/// Whether a row names `module`: its module cell does (or names one of its children), or it is
/// the row of the module's parent (or of a sibling) and names the module's last part anywhere
/// (`outputs::queue` (`disk`)).
fn row_names(cell: &str, row: &str, module: &str) -> bool {
    let subjects = backticked(cell);
    let child = format!("{module}::");
    if subjects
        .iter()
        .any(|s| *s == module || s.starts_with(&child))
    {
        return true;
    }
    let Some((parent, last)) = module.rsplit_once("::") else {
        return false;
    };
    let parent_of = |s: &str| s.rsplit_once("::").map(|(p, _)| p.to_owned());
    subjects
        .iter()
        .any(|s| *s == parent || parent_of(s).as_deref() == Some(parent))
        && backticked(row).contains(last)
}

fn unmapped(modules: &BTreeSet<String>, rows: &[(String, String)]) -> Vec<String> {
    modules
        .iter()
        .filter(|m| !rows.iter().any(|(cell, row)| row_names(cell, row, m)))
        .cloned()
        .collect()
}

/// Every module under `src` (one known to exist checked first) is named in the map of
/// `lib_rs` (top-level ones only, or all) and in the table after `heading` in ARCHITECTURE.md.
fn assert_on_both_maps(src: &str, known: &str, lib_rs: &str, top_level_only: bool, heading: &str) {
    let all = modules(&Path::new(ROOT).join(src));
    assert!(all.contains(known), "{all:?}");
    let doc = crate_doc(lib_rs);
    let named = backticked(&doc);
    let missing: Vec<&String> = all
        .iter()
        .filter(|m| !top_level_only || !m.contains("::"))
        .filter(|m| !named.contains(m.as_str()))
        .collect();
    assert!(missing.is_empty(), "{lib_rs}'s map misses {missing:?}");
    let missing = unmapped(&all, &map_rows(heading));
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map after {heading:?} misses {missing:?}"
    );
}

#[test]
fn every_module_of_the_daemon_is_on_both_maps() {
    let (src, lib_rs) = ("src", "src/lib.rs");
    assert_on_both_maps(
        src,
        "outputs::forward::link",
        lib_rs,
        true,
        "### The daemon",
    );
}

#[test]
fn every_module_of_the_pure_crate_is_on_both_maps() {
    let (src, lib_rs) = ("crates/syslog/src", "crates/syslog/src/lib.rs");
    assert_on_both_maps(src, "relp::server", lib_rs, false, "### The pure crate");
}

#[test]
fn the_pure_crate_depends_on_nothing_that_does_io() {
    let tree = common::cargo_tree("logger-syslog", "{p}");
    let crates: BTreeSet<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let foreign: Vec<&String> = crates
        .iter()
        .filter(|c| !PURE_DEPENDENCIES.contains(&c.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "the pure crate (crates/syslog) now depends on {foreign:?}: only crates that compute \
         belong there (tests/map.rs PURE_DEPENDENCIES, after a look at what they do)"
    );
}

#[test]
fn every_integration_module_is_in_the_tests_section() {
    let text = fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let section = text
        .split_once("## Tests")
        .and_then(|(_, rest)| rest.split("\n## ").next())
        .expect("ARCHITECTURE.md has a Tests section");
    let named = backticked(section);
    let missing: Vec<String> = fs::read_dir(Path::new(ROOT).join("tests/integration"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .filter(|m| m != "main" && !named.contains(m.as_str()))
        .filter(|m| !section.contains(&format!("{m}.rs")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's Tests section misses tests/integration/{missing:?}"
    );
}
