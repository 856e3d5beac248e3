//! The layers of the effective configuration: the defaults, then the file's keys, then the
//! flags (each the key of the same name, read the same way), then the checks that span several
//! keys. Every key is read through `schema`; nothing here knows one key's range or syntax.

use std::collections::HashSet;

use super::document::{Document, Spanned, Table, Value, flag_value};
use super::input::InputSpec;
use super::schema::{self, KEYS, LIMIT_KEYS};
use super::values::OutputSpec;
use super::{Config, Env};
use crate::cli::Cli;
use crate::error::{Error, Result};

/// `table`'s entries in the order the file gives them (the map itself is sorted by name), so
/// that the first error reported is the first in the file.
pub(super) fn in_file_order<'a, 't>(
    table: &'a Table<'t>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'t, str>>,
    &'a Spanned<Value<'t>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    entries
}

/// Builds the configuration from the defaults, `doc` (if a file was read) and the flags.
pub(super) fn merge(doc: Option<&Document<'_>>, cli: &Cli, env: &Env) -> Result<Config> {
    let mut c = Config::defaults(env);
    if let Some(doc) = doc {
        let mut entries = in_file_order(&doc.root);
        // Inputs last: they start from the top-level limits, wherever the file sets them.
        entries.sort_by_key(|(name, _)| matches!(name.get_ref().as_ref(), "listen" | "input"));
        for (name, value) in entries {
            let name_text = name.get_ref().as_ref();
            let fail = |f: super::document::Fault| {
                doc.error_at(
                    f.at.unwrap_or(value.span()),
                    &format!("key '{name_text}': {}", f.message),
                )
            };
            if let Some(key) = schema::find(KEYS, name_text) {
                (key.read)(&mut c, value.get_ref()).map_err(fail)?;
            } else if let Some(key) = schema::find(LIMIT_KEYS, name_text) {
                (key.read)(&mut c.limits, value.get_ref()).map_err(fail)?;
            } else {
                return Err(doc.error_at(
                    name.span(),
                    &format!(
                        "unknown key '{name_text}' (expected one of {}, {})",
                        schema::names(KEYS),
                        schema::names(LIMIT_KEYS)
                    ),
                ));
            }
        }
    }
    if c.inputs_are_default {
        c.inputs = Config::defaults(env).inputs;
        for input in &mut c.inputs {
            input.limits = c.limits.clone();
        }
    }
    flags(&mut c, cli)?;
    // One order whatever the file's: the inputs `listen` prints, then the [[input]] tables.
    let limits = c.limits.clone();
    c.inputs.sort_by_key(|i| !i.is_plain(&limits));
    check(&c).map_err(|e| {
        let origin = doc.map_or("the command line", |d| d.origin());
        Error::Config(format!("{origin}: {e}"))
    })?;
    Ok(c)
}

/// The flags, over the file: each is its key, given on the command line.
fn flags(c: &mut Config, cli: &Cli) -> Result<()> {
    if !cli.listen.is_empty() {
        c.inputs = cli
            .listen
            .iter()
            .map(|a| InputSpec::plain(a.clone(), &c.limits))
            .collect();
        c.inputs_are_default = false;
    }
    if !cli.output.is_empty() {
        c.outputs = cli
            .output
            .iter()
            .map(|s| s.parse().map(OutputSpec::everything))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Config(format!("--output: {e}")))?;
    }
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    for (name, text) in [
        ("pidfile", path(&cli.pidfile)),
        ("user", cli.user.clone()),
        ("group", cli.group.clone()),
        ("umask", cli.umask.clone()),
        ("log-level", cli.log_level.clone()),
    ] {
        let Some(text) = text else { continue };
        let key = schema::find(KEYS, name).expect("every flag with a value is a key");
        (key.read)(c, &flag_value(&text))
            .map_err(|f| Error::Config(format!("--{name}: {}", f.message)))?;
    }
    if let Some(fd) = cli.notify_fd
        && fd < 3
    {
        return Err(Error::Usage(format!(
            "--notify-fd {fd}: the descriptor must be 3 or above (0-2 are stdio)"
        )));
    }
    c.fork = cli.fork;
    c.notify_fd = cli.notify_fd;
    Ok(())
}

/// What no single key can check.
fn check(c: &Config) -> Result<(), String> {
    // An empty list serves only what the service manager passes (socket activation);
    // `inputs::bind::bind_all` refuses to start with nothing at all.
    let mut seen = HashSet::new();
    // TCP and TLS share the port space, UDP has its own; a path is one file whatever the kind.
    let socket = |a: &crate::listen::ListenAddr| {
        let stream = a.socket_addr().map(|_| a.is_stream());
        (stream, a.endpoint.clone())
    };
    if let Some(dup) = c.listen().find(|a| !seen.insert(socket(a))) {
        return Err(format!(
            "key 'listen': {} is listed twice ({dup})",
            dup.endpoint_text()
        ));
    }
    if c.outputs.is_empty() {
        return Err("key 'output': no output: give at least one".into());
    }
    // The journal read into the journal would store every entry twice (and each copy is
    // never read back, so it is no endless loop, but still no configuration anyone wants).
    let reads_journal = c
        .listen()
        .any(|a| a.transport == syslog::message::Transport::Journal);
    if reads_journal
        && let Some((i, _)) = c.outputs.iter().enumerate().find(|(_, o)| {
            matches!(o.target, super::Output::Journal | super::Output::Auto)
                && (o.route.transports.is_empty()
                    || o.route
                        .transports
                        .contains(&syslog::message::Transport::Journal))
        })
    {
        return Err(format!(
            "output #{}: the journal input would be written back into the journal it reads; \
             give that output a transport list without \"journal\" (transport = [\"unix\", \
             \"udp\"]), or send the journal elsewhere",
            i + 1
        ));
    }
    if c.group.is_some() && c.user.is_none() {
        return Err(
            "key 'group': needs a user too: a group alone would keep uid 0 and every capability"
                .into(),
        );
    }
    Ok(())
}
