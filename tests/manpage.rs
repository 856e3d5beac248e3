//! The man page, logger(8), is generated from the same definition as `--help` (`cli::Cli`), and
//! the committed copy in `man/logger.8` (what the Debian package installs) must be what that
//! definition gives today. After changing a flag or the help text: `UPDATE_MAN=1 cargo test
//! --test manpage`. Section 8, system administration: util-linux's client is logger(1), and
//! `man logger` still shows it; `man 8 logger` shows this.

use clap::CommandFactory;
use logger::cli::Cli;

/// clap_mangen's title, name, synopsis, description and options; then each heading of the
/// long help's closing text (INPUTS, OUTPUTS, ..., EXIT STATUS) as a section of its own, its
/// lines kept as written (no filling: they are aligned tables).
fn render() -> String {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    let mut text = String::from_utf8(out).unwrap();
    let closing = cmd
        .get_after_long_help()
        .expect("--help has closing sections");
    for line in closing.to_string().lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let (heading, note) = line.split_once(" (").map_or((line, ""), |(h, n)| (h, n));
            text.push_str(&format!(".fi\n.SH {}\n", roff(heading)));
            if !note.is_empty() {
                text.push_str(&format!("({}\n", roff(note)));
            }
            text.push_str(".nf\n");
        } else {
            text.push_str(&roff(&line[4.min(line.len())..]));
            text.push('\n');
        }
    }
    text.push_str(
        ".fi\n.SH SEE ALSO\nlogger(1), systemd.socket(5), systemd-journald.service(8), syslog(3)\n",
    );
    // The first `.fi` closes nothing; roff ignores it, but keep the page clean.
    text.replacen(".fi\n.SH", ".SH", 1)
}

/// Escapes text for roff: backslashes, hyphens, and a leading dot or quote.
fn roff(s: &str) -> String {
    let escaped = s.replace('\\', "\\e").replace('-', "\\-");
    match escaped.chars().next() {
        Some('.' | '\'') => format!("\\&{escaped}"),
        _ => escaped,
    }
}

#[test]
fn the_committed_man_page_is_generated_from_the_cli() {
    let rendered = render();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/logger.8");
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "man/logger.8 is out of date: run UPDATE_MAN=1 cargo test --test manpage"
    );
    for needle in [
        ".TH logger 8",
        ".SH EXIT STATUS",
        ".SH SENDING A MESSAGE",
        ".SH SIGNALS",
        "\\-\\-fork",
    ] {
        assert!(rendered.contains(needle), "the man page lacks {needle}");
    }
}
