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
        ".fi\n.SH SEE ALSO\nlogger.toml(5), logger(1), systemd.socket(5), systemd-journald.service(8), \
         syslog(3), rsyslogd(8)\n",
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

/// logger.toml(5): every key of the schema, with its meaning and default, in the order
/// `--check-config` prints them.
fn render_config_manual() -> String {
    let mut text = format!(
        ".TH logger.toml 5 \"\" \"logger {}\" \"File Formats\"\n\
         .SH NAME\nlogger.toml \\- configuration file of the logger syslog daemon\n\
         .SH SYNOPSIS\n/etc/logger/logger.toml\n\
         .SH DESCRIPTION\n\
         The configuration of logger(8), in TOML. Command-line flags win over the file. Top-level \
         keys come first; each [[input]] table describes one listener, each [[output]] table one \
         output and the messages it takes (TOML puts every key after a table header into that \
         table). Durations are written like \"30s\", \"5m\" or \"1h\"; sizes in bytes or like \
         \"256K\" and \"1G\". \\fBlogger \\-\\-check\\-config\\fR prints the effective \
         configuration, or the file, line and reason it is refused.\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut table = None;
    for key in logger::config::reference() {
        if table != Some(key.table) {
            table = Some(key.table);
            let heading = match key.table {
                "" => "TOP-LEVEL KEYS".to_owned(),
                t => format!("{t} TABLES"),
            };
            text.push_str(&format!(".SH {}\n", roff(&heading)));
        }
        text.push_str(&format!(".TP\n.B {}\n{}\n", roff(key.name), roff(key.doc)));
        if let Some(default) = key.default {
            text.push_str(&format!(".br\nDefault: {}\n", roff(&default)));
        }
    }
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("packaging/examples/debian-rules.toml"),
    )
    .unwrap();
    text.push_str(
        ".SH EXAMPLE\nDebian's rsyslog rules as outputs \
         (/usr/share/doc/logger/examples/debian-rules.toml):\n.PP\n.nf\n",
    );
    for line in example.lines().filter(|l| !l.starts_with('#')) {
        text.push_str(&roff(line));
        text.push('\n');
    }
    text.push_str(".fi\n.SH SEE ALSO\nlogger(8), rsyslog.conf(5)\n");
    text
}

/// Compares `rendered` with the committed file at `path` under the manifest directory, after
/// writing it there when UPDATE_MAN is set.
fn check_committed(path: &str, rendered: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(&path, rendered).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{} is out of date: run UPDATE_MAN=1 cargo test --test manpage",
        path.display()
    );
}

#[test]
fn the_configuration_manual_has_every_key_of_the_schema() {
    let rendered = render_config_manual();
    check_committed("man/logger.toml.5", &rendered);
    for key in logger::config::reference() {
        assert!(
            rendered.contains(&format!(".B {}\n", roff(key.name))),
            "logger.toml(5) lacks {}",
            key.name
        );
    }
    for needle in [
        ".SH [[input]] TABLES",
        ".SH [[output]] TABLES",
        "time\\-zone",
        "traditional",
    ] {
        assert!(rendered.contains(needle), "logger.toml(5) lacks {needle}");
    }
}

#[test]
fn the_committed_man_page_is_generated_from_the_cli() {
    let rendered = render();
    check_committed("man/logger.8", &rendered);
    for needle in [
        ".TH logger 8",
        ".SH FILES",
        ".SH EXAMPLES",
        ".SH EXIT STATUS",
        ".SH SENDING A MESSAGE",
        ".SH SIGNALS",
        "\\-\\-fork",
    ] {
        assert!(rendered.contains(needle), "the man page lacks {needle}");
    }
}
