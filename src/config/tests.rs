//! The configuration's unit tests: defaults, layers, errors, and printing back.

use super::*;
use syslog::message::Transport;

fn env() -> Env {
    Env {
        runtime_directory: None,
        xdg_runtime_dir: Some("/run/user/1000".into()),
        state_directory: None,
    }
}

#[test]
fn defaults_listen_on_loopback_and_the_runtime_socket() {
    let c = Config::from_toml("", &Cli::default(), &env()).unwrap();
    let listen: Vec<String> = c.listen().map(|a| a.to_string()).collect();
    assert_eq!(
        listen,
        [
            "udp://127.0.0.1:5514",
            "tcp://127.0.0.1:5514",
            "unix:///run/user/1000/logger/log"
        ]
    );
    assert!(c.inputs_are_default);
    assert_eq!(c.outputs, vec![OutputSpec::everything(Output::Auto)]);
    assert_eq!(c.umask, 0o027);
    assert_eq!(c.heartbeat, Some(Duration::from_secs(300)));
}

#[test]
fn runtime_directory_wins_over_xdg() {
    let e = Env {
        runtime_directory: Some("/run/logger:/run/other".into()),
        ..env()
    };
    assert_eq!(e.socket_dir(), PathBuf::from("/run/logger"));
    assert_eq!(Env::default().socket_dir(), PathBuf::from("/run/logger"));
}

#[test]
fn flags_win_over_the_file() {
    let cli = Cli {
        listen: vec!["tcp://127.0.0.1:1".parse().unwrap()],
        output: vec!["stderr".into()],
        ..Cli::default()
    };
    let c = Config::from_toml(
        "listen = [\"udp://127.0.0.1:9\"]\noutput = \"journal\"\nheartbeat = \"0\"\n",
        &cli,
        &env(),
    )
    .unwrap();
    assert_eq!(c.listen().cloned().collect::<Vec<_>>(), cli.listen);
    assert_eq!(c.outputs, vec![OutputSpec::everything(Output::Stderr)]);
    assert_eq!(c.heartbeat, None);
}

#[test]
fn errors_name_the_line_and_key() {
    let err = Config::from_toml("output = \"stderr\"\nlisen = []\n", &Cli::default(), &env())
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2:") && err.contains("lisen"), "{err}");
    let err = Config::from_toml("listen = [\"udp://x\"]", &Cli::default(), &env())
        .unwrap_err()
        .to_string();
    assert!(err.contains("key 'listen'"), "{err}");
    let err = Config::from_toml("max-message-size = 100", &Cli::default(), &env())
        .unwrap_err()
        .to_string();
    assert!(err.contains("max-message-size"), "{err}");
    let err = Config::from_toml("receive-buffer = 100", &Cli::default(), &env())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("receive-buffer") && err.contains("4096"),
        "{err}"
    );
}

#[test]
fn printed_configuration_reads_back_identically() {
    let c = Config::from_toml(
        "listen = [\"tcp://[::1]:0\"]\noutput = \"file:/var/log/x.log\"\nheartbeat = \"250ms\"\n\
         rate-limit = 0\numask = \"077\"\n",
        &Cli::default(),
        &env(),
    )
    .unwrap();
    let again = Config::from_toml(&c.to_string(), &Cli::default(), &env()).unwrap();
    assert_eq!(c, again);
}

#[test]
fn the_shipped_file_is_the_defaults_commented_out() {
    let shipped = include_str!("../../packaging/logger.toml");
    assert_eq!(
        Config::from_toml(shipped, &Cli::default(), &Env::default()).unwrap(),
        Config::from_toml("", &Cli::default(), &Env::default()).unwrap()
    );
    // Uncommented, every key but the examples (user, pidfile, metrics, the [[output]] table
    // at the end) gives the defaults again.
    let defaults_part = shipped.split("#[[output]]").next().unwrap();
    let uncommented: String = defaults_part
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| {
            l.contains(" = ")
                && ![
                    "user",
                    "group",
                    "pidfile",
                    "metrics-listen",
                    "metrics-allow",
                ]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{}\n", l.split("  #").next().unwrap()))
        .collect();
    let mut defaults = Config::from_toml("", &Cli::default(), &Env::default()).unwrap();
    let mut parsed = Config::from_toml(&uncommented, &Cli::default(), &Env::default())
        .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    // The listen list as written is the default, but written: socket activation replaces
    // only the built-in one.
    assert!(!parsed.inputs_are_default);
    parsed.inputs_are_default = true;
    defaults.file = None;
    assert_eq!(parsed, defaults);
}

#[test]
fn queues_and_the_stop_deadline_are_configured_checked_and_printed_back() {
    let text = "stop-timeout = \"3s\"\n[[output]]\nto = \"stderr\"\nqueue-policy = \"drop\"\n\
                queue-size = 65536\n[[output]]\nto = \"file:/var/log/r/{hostname}.log\"\n";
    let c = Config::from_toml(text, &Cli::default(), &env()).unwrap();
    assert_eq!(c.stop_timeout, Duration::from_secs(3));
    assert_eq!(c.outputs[0].policy, QueuePolicy::Drop);
    assert_eq!(c.outputs[0].queue_size, 65536);
    assert_eq!(c.outputs[1].policy, QueuePolicy::Block);
    assert_eq!(c.outputs[1].queue_size, DEFAULT_QUEUE_SIZE);
    let again = Config::from_toml(&c.to_string(), &Cli::default(), &env()).unwrap();
    assert_eq!(again.outputs, c.outputs);
    for (bad, key) in [
        ("stop-timeout = \"0\"", "stop-timeout"),
        ("stop-timeout = \"8d\"", "stop-timeout"),
        (
            "[[output]]\nto = \"stderr\"\nqueue-policy = \"maybe\"",
            "queue policy",
        ),
        (
            "[[output]]\nto = \"stderr\"\nqueue-size = 100",
            "queue-size",
        ),
        (
            "[[output]]\nto = \"file:/l/{host}.log\"",
            "unknown placeholder",
        ),
    ] {
        let err = Config::from_toml(bad, &Cli::default(), &env())
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{bad}: {err}");
    }
}

#[test]
fn output_tables_choose_with_rules_and_print_back() {
    let text = "[[output]]\nto = \"journal\"\nmatch = \"*.*;auth,authpriv.none\"\n\
                [[output]]\nto = \"file:/var/log/auth.log\"\nmatch = \"auth,authpriv.*\"\n\
                format = \"json\"\n\
                [[output]]\nto = \"file:/var/log/remote.log\"\ntransport = [\"udp\", \"tcp\"]\n\
                program = \"sshd\"\nhostname = [\"gw1\"]\nsource = [\"10.0.0.0/8\"]\n";
    let c = Config::from_toml(text, &Cli::default(), &env()).unwrap();
    assert_eq!(c.outputs.len(), 3);
    assert_eq!(c.outputs[1].format, LineFormat::Json);
    assert_eq!(
        c.outputs[2].route.transports,
        [Transport::Udp, Transport::Tcp]
    );
    assert_eq!(c.outputs[2].route.programs, ["sshd"]);
    let again = Config::from_toml(&c.to_string(), &Cli::default(), &env()).unwrap();
    assert_eq!(c.outputs, again.outputs);
    // --output replaces the file's outputs; each takes everything.
    let cli = Cli {
        output: vec!["stderr".into(), "file:/tmp/x.log".into()],
        ..Cli::default()
    };
    let c = Config::from_toml(text, &cli, &env()).unwrap();
    assert_eq!(
        c.outputs,
        [
            OutputSpec::everything(Output::Stderr),
            OutputSpec::everything(Output::File("/tmp/x.log".into()))
        ]
    );
}

#[test]
fn bad_output_tables_say_which_and_why() {
    for (text, needle) in [
        ("[[output]]\nmatch = \"*.*\"\n", "'to' is missing"),
        (
            "[[output]]\nto = \"journal\"\nfromat = \"json\"\n",
            "unknown key 'fromat'",
        ),
        (
            "[[output]]\nto = \"journal\"\nformat = \"json\"\n",
            "applies to file",
        ),
        (
            "[[output]]\nto = \"stderr\"\nmatch = \"mial.*\"\n",
            "'mial'",
        ),
        (
            "[[output]]\nto = \"stderr\"\ntransport = [\"smtp\"]\n",
            "not a transport",
        ),
        (
            "[[output]]\nto = \"stderr\"\nsource = [\"10.0.0.0/40\"]\n",
            "not a network",
        ),
        (
            "[[output]]\nto = \"stderr\"\n[[output]]\nto = \"relative.log\"\n",
            "output #2",
        ),
        ("output = []\n", "no output"),
    ] {
        let err = Config::from_toml(text, &Cli::default(), &env())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0"), Ok(None));
    assert_eq!(parse_duration("5m"), Ok(Some(Duration::from_secs(300))));
    assert_eq!(
        parse_duration("250ms"),
        Ok(Some(Duration::from_millis(250)))
    );
    assert_eq!(parse_duration("7"), Ok(Some(Duration::from_secs(7))));
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn every_key_is_documented_in_help_and_the_shipped_file() {
    use clap::CommandFactory;
    let help = Cli::command()
        .get_after_long_help()
        .expect("--help has closing sections")
        .to_string();
    // The key list of the CONFIGURATION FILE section names exactly the schema's keys.
    let section = help
        .split("CONFIGURATION FILE")
        .nth(1)
        .and_then(|s| s.split("Keys:").nth(1))
        .and_then(|s| s.split("Run").next())
        .expect("a key list in --help");
    let mut listed: Vec<&str> = section
        .split([',', '.', ' ', '\n'])
        .filter(|w| !w.is_empty())
        .collect();
    let mut declared: Vec<&str> = schema::KEYS
        .iter()
        .map(|k| k.name)
        .chain(schema::LIMIT_KEYS.iter().map(|k| k.name))
        .collect();
    listed.sort_unstable();
    declared.sort_unstable();
    assert_eq!(listed, declared, "--help's key list");
    for key in schema::OUTPUT_KEYS {
        assert!(
            help.contains(&format!("{} = ", key.name)) || help.contains(key.name),
            "--help does not show [[output]] key {}",
            key.name
        );
    }
    for key in schema::INPUT_KEYS {
        assert!(
            help.contains(key.name),
            "--help does not show [[input]] key {}",
            key.name
        );
    }
    let shipped = include_str!("../../packaging/logger.toml");
    let top = schema::KEYS
        .iter()
        .filter(|k| !["output", "input"].contains(&k.name));
    for name in top
        .map(|k| k.name)
        .chain(schema::LIMIT_KEYS.iter().map(|k| k.name))
    {
        assert!(
            shipped.contains(&format!("#{name} = ")),
            "packaging/logger.toml does not show {name}"
        );
    }
    for key in schema::INPUT_KEYS {
        assert!(
            shipped.contains(&format!("#{} = ", key.name)),
            "packaging/logger.toml's [[input]] example does not show {}",
            key.name
        );
    }
    for key in schema::OUTPUT_KEYS {
        assert!(
            shipped.contains(&format!("#{} = ", key.name)),
            "packaging/logger.toml's [[output]] example does not show {}",
            key.name
        );
    }
}

#[test]
fn value_errors_name_the_line_of_the_key_and_of_the_output_key() {
    let text = "heartbeat = \"1m\"\nmax-message-size = 100\n";
    let err = Config::from_toml(text, &Cli::default(), &env())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("<config>:2: key 'max-message-size': 100 is outside"),
        "{err}"
    );
    let text =
        "[[output]]\nto = \"stderr\"\n\n[[output]]\nto = \"file:/l/x.log\"\nformat = \"xml\"\n";
    let err = Config::from_toml(text, &Cli::default(), &env())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("<config>:6: key 'output': output #2: 'format': 'xml' is not a format"),
        "{err}"
    );
    // A flag's bad value names the flag.
    let cli = Cli {
        umask: Some("999".into()),
        ..Cli::default()
    };
    let err = Config::from_toml("", &cli, &env()).unwrap_err().to_string();
    assert!(err.contains("--umask: '999' is not an octal mask"), "{err}");
    // Sizes may be written with a unit, and print back as bytes.
    let c = Config::from_toml(
        "max-message-size = \"1M\"\n[[output]]\nto = \"stderr\"\nqueue-size = \"4M\"\n",
        &Cli::default(),
        &env(),
    )
    .unwrap();
    assert_eq!(c.limits.max_message_size, 1 << 20);
    assert_eq!(c.outputs[0].queue_size, 4 << 20);
    assert!(c.to_string().contains("queue-size = 4194304\n"));
}

#[test]
fn strings_print_back_as_toml_whatever_they_hold() {
    let path = "/var/log/odd \"name\" \\ tab\tand é\u{7f}.log";
    let c = Config::from_toml(
        &format!("log-file = {}\nuser = \"nobody\"\n", schema::quote(path)),
        &Cli::default(),
        &env(),
    )
    .unwrap();
    assert_eq!(c.log_file, PathBuf::from(path));
    let mut again = Config::from_toml(&c.to_string(), &Cli::default(), &env()).unwrap();
    // Printed, the built-in listen list is a list like any other.
    again.inputs_are_default = true;
    assert_eq!(again, c);
}

#[test]
fn input_tables_take_allow_lists_tls_and_their_own_limits_and_print_back() {
    let text = "max-connections = 100\nlisten = [\"udp://127.0.0.1:514\"]\n\
                [[input]]\nlisten = \"tls://0.0.0.0:6514\"\nallow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n\
                tls-cert = \"/etc/logger/tls/server.pem\"\ntls-key = \"/etc/logger/tls/server.key\"\n\
                tls-client-ca = \"/etc/logger/tls/clients.pem\"\ntls-client-names = [\"*.example.net\"]\n\
                tls-crl = \"/etc/logger/tls/ca.crl\"\nmax-connections = 1000\n\
                [[input]]\nlisten = \"tcp://0.0.0.0:514\"\n";
    let c = Config::from_toml(text, &Cli::default(), &env()).unwrap();
    let listen: Vec<String> = c.listen().map(ToString::to_string).collect();
    // The plain ones first, whatever the file's order.
    assert_eq!(
        listen,
        [
            "udp://127.0.0.1:514",
            "tcp://0.0.0.0:514",
            "tls://0.0.0.0:6514"
        ]
    );
    let tls = &c.inputs[2];
    assert_eq!(tls.limits.max_connections, 1000);
    assert_eq!(c.inputs[1].limits.max_connections, 100);
    assert!(tls.allow.allows("10.1.2.3".parse().unwrap()));
    assert!(!tls.allow.allows("192.0.2.1".parse().unwrap()));
    assert!(tls.tls.verifies_clients());
    assert_eq!(tls.tls.crls.len(), 1);
    let shown = c.to_string();
    assert!(
        shown.contains("listen = [\"udp://127.0.0.1:514\", \"tcp://0.0.0.0:514\"]"),
        "{shown}"
    );
    assert!(
        shown.contains("[[input]]\nlisten = \"tls://0.0.0.0:6514\"\n"),
        "{shown}"
    );
    assert!(shown.contains("max-connections = 1000\n"), "{shown}");
    let again = Config::from_toml(&shown, &Cli::default(), &env()).unwrap();
    assert_eq!(again.inputs, c.inputs);
}

#[test]
fn bad_input_tables_say_which_and_why() {
    for (text, needle) in [
        (
            "[[input]]\nlisten = \"tls://0.0.0.0:6514\"\n",
            "needs 'tls-cert' and 'tls-key'",
        ),
        (
            "[[input]]\nlisten = \"udp://0.0.0.0:514\"\ntls-cert = \"/a.pem\"\n",
            "apply to tls://, relp+tls:// and journal-remote+https:// inputs only",
        ),
        (
            "[[input]]\nlisten = \"unix:///run/l/log\"\nallow = [\"10.0.0.0/8\"]\n",
            "a local socket's access",
        ),
        (
            "[[input]]\nlisten = \"tls://0.0.0.0:1\"\ntls-cert = \"/a\"\ntls-key = \"/b\"\n\
             tls-client-names = [\"x.example.net\"]\n",
            "needs 'tls-client-ca'",
        ),
        (
            "[[input]]\nlisten = \"tls://0.0.0.0:1\"\ntls-cert = \"relative.pem\"\ntls-key = \"/b\"\n",
            "absolute path",
        ),
        (
            "[[input]]\nlisten = \"udp://0.0.0.0:514\"\nallow = []\n",
            "refuse everyone",
        ),
        (
            "[[input]]\nlisten = \"udp://0.0.0.0:514\"\nallow = [\"10.0.0.0/33\"]\n",
            "not a network",
        ),
        (
            "[[input]]\nallow = [\"10.0.0.0/8\"]\n",
            "'listen' is missing",
        ),
        (
            "[[input]]\nlisten = \"udp://0.0.0.0:514\"\nlsten = 1\n",
            "unknown key 'lsten'",
        ),
        (
            "[[input]]\nlisten = \"tls://0.0.0.0:1\"\ntls-cert = \"/a\"\ntls-key = \"/b\"\n\
             tls-client-fingerprints = [\"SHA256:AB\"]\n",
            "not a SHA-256 fingerprint",
        ),
        (
            "listen = [\"tcp://0.0.0.0:514\"]\n[[input]]\nlisten = \"tls://0.0.0.0:514\"\n\
             tls-cert = \"/a\"\ntls-key = \"/b\"\n",
            "listed twice",
        ),
    ] {
        let err = Config::from_toml(text, &Cli::default(), &env())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
    // UDP and TCP may share a port; an [[input]] alone replaces the defaults.
    let c = Config::from_toml(
        "[[input]]\nlisten = \"udp://0.0.0.0:514\"\nallow = [\"10.0.0.0/8\"]\n\
         [[input]]\nlisten = \"tcp://0.0.0.0:514\"\nallow = [\"10.0.0.0/8\"]\n",
        &Cli::default(),
        &env(),
    )
    .unwrap();
    assert_eq!(c.inputs.len(), 2);
    assert!(!c.inputs_are_default);
}

#[test]
fn every_packaged_example_is_a_valid_configuration() {
    for (name, text) in [
        (
            "debian-rules.toml",
            include_str!("../../packaging/examples/debian-rules.toml"),
        ),
        (
            "without-systemd.toml",
            include_str!("../../packaging/examples/without-systemd.toml"),
        ),
    ] {
        let c = Config::from_toml(text, &Cli::default(), &env())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!c.outputs.is_empty(), "{name}");
    }
    let c = Config::from_toml(
        include_str!("../../packaging/examples/without-systemd.toml"),
        &Cli::default(),
        &env(),
    )
    .unwrap();
    assert!(c.listen().any(|l| l.transport == Transport::Kmsg));
    // A read input takes no allow-list, and the journal is not written back into itself.
    for (bad, why) in [
        (
            "[[input]]\nread = \"kmsg\"\nallow = [\"10.0.0.0/8\"]\n",
            "'allow' applies",
        ),
        (
            "[[input]]\nread = \"journal\"\n",
            "written back into the journal",
        ),
        (
            "[[input]]\nread = \"journal\"\n[[output]]\nto = \"journal\"\n\
             transport = [\"journal\", \"udp\"]\n",
            "written back into the journal",
        ),
        (
            "[[input]]\nlisten = \"udp://127.0.0.1:0\"\njournal-match = [\"A=b\"]\n",
            "applies to read",
        ),
        ("[[input]]\nread = \"dmesg\"\n", "not a log to read"),
    ] {
        let e = Config::from_toml(bad, &Cli::default(), &env()).unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
}
