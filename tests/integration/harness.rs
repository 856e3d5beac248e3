//! A small test runner in libtest's format, for one reason: a test whose requirement is missing
//! (root, a tool) must show as `ignored, <reason>` in the runner's own output, not as `ok`.
//! libtest decides "ignored" at compile time only, and captures the SKIPPED line of a test that
//! returns early. Under LOGGER_TEST_STRICT=1 (CI) a missing requirement fails the test instead.
//!
//! Tests are registered with [`tests!`] in each module; an unregistered test function is dead
//! code, which the compiler reports and clippy `-D warnings` refuses. Output is libtest's:
//! `test NAME ... ok|FAILED|ignored, REASON`, the failures with their panic messages, and
//! `test result: ...`. Arguments: name filters (substring, or whole with `--exact`), `--skip F`,
//! `--list`, `--test-threads N`; libtest's other flags are accepted and ignored.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One test: its name (`module::function`) and body.
pub type Test = (&'static str, fn());

/// Scenarios that share one costly fixture (a booted systemd): run in order on one runner
/// thread, each reported on its own (a failure hides no later one), then the teardown, which
/// runs whatever was selected or failed.
pub type Sequence = (&'static [Test], fn());

/// What a runner thread takes from the queue.
enum Job {
    One(Test),
    InOrder(Vec<Test>, fn()),
}

/// Registers test functions: `pub const TESTS: &[Test] = tests![a, b];`.
#[macro_export]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((
            concat!(module_path!(), "::", stringify!($name)),
            $name as fn(),
        )),*]
    };
}

/// The panic payload of a test that cannot run here.
pub struct Skip(pub String);

/// Ends the test as ignored (or, in strict mode, failed) because `why` is missing.
#[track_caller]
pub fn skip(why: &str) -> ! {
    if crate::support::strict() {
        panic!("LOGGER_TEST_STRICT=1 and a requirement is missing: {why}");
    }
    panic::panic_any(Skip(why.to_owned()))
}

enum Outcome {
    Passed,
    Failed(String),
    Ignored(String),
}

thread_local! {
    /// The message and place of the last panic on this thread, kept by the hook for the report.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn run_one(body: fn()) -> Outcome {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(()) => Outcome::Passed,
        Err(payload) => match payload.downcast::<Skip>() {
            Ok(skip) => Outcome::Ignored(skip.0),
            Err(payload) => Outcome::Failed(
                LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| describe(&*payload)),
            ),
        },
    }
}

fn describe(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

struct Args {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    threads: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        filters: Vec::new(),
        skips: Vec::new(),
        exact: false,
        list: false,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--exact" => args.exact = true,
            "--list" => args.list = true,
            "--skip" => args.skips.extend(it.next()),
            "--test-threads" => {
                if let Some(n) = it.next().and_then(|n| n.parse().ok()) {
                    args.threads = n;
                }
            }
            _ if a.starts_with("--test-threads=") => {
                if let Ok(n) = a["--test-threads=".len()..].parse() {
                    args.threads = n;
                }
            }
            // --nocapture, --show-output, --color ...: output is never captured here.
            _ if a.starts_with('-') => {}
            _ => args.filters.push(a),
        }
    }
    args.threads = args.threads.max(1);
    args
}

/// Runs the selected tests on a few threads and reports as libtest does; each sequence's
/// selected scenarios run in order on one thread.
pub fn main(groups: &[&[Test]], sequences: &[Sequence]) -> ExitCode {
    let args = parse_args();
    let chosen = |tests: &[Test]| -> Vec<Test> {
        tests
            .iter()
            .copied()
            .map(|(name, f)| (name.split_once("::").map_or(name, |(_, n)| n), f))
            .filter(|(name, _)| {
                let chosen = args.filters.is_empty()
                    || args.filters.iter().any(|f| {
                        if args.exact {
                            name == f
                        } else {
                            name.contains(f.as_str())
                        }
                    });
                chosen && !args.skips.iter().any(|s| name.contains(s.as_str()))
            })
            .collect()
    };
    let mut jobs: VecDeque<Job> = VecDeque::new();
    // Sequences first: they are the longest, and a runner thread is theirs until they end.
    for (steps, teardown) in sequences {
        let steps = chosen(steps);
        if !steps.is_empty() {
            jobs.push_back(Job::InOrder(steps, *teardown));
        }
    }
    jobs.extend(groups.iter().flat_map(|g| chosen(g)).map(Job::One));
    let selected: Vec<&str> = jobs
        .iter()
        .flat_map(|j| match j {
            Job::One((name, _)) => vec![*name],
            Job::InOrder(steps, _) => steps.iter().map(|(n, _)| *n).collect(),
        })
        .collect();
    let total: usize = groups.iter().map(|g| g.len()).sum::<usize>()
        + sequences.iter().map(|(s, _)| s.len()).sum::<usize>();
    if args.list {
        for name in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().is::<Skip>() {
            return;
        }
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = format!("panicked{place}:\n{}", describe(info.payload()));
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
        // Panics outside a test body (a helper thread) still get the default report.
        if std::thread::current()
            .name()
            .is_none_or(|n| !n.starts_with("test "))
        {
            default_hook(info);
        }
    }));
    let n = selected.len();
    println!("\nrunning {n} test{}", if n == 1 { "" } else { "s" });
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(jobs));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..args.threads)
        .map(|i| {
            let (queue, results) = (queue.clone(), results.clone());
            std::thread::Builder::new()
                .name(format!("test runner {i}"))
                .spawn(move || {
                    let run = |(name, body): Test| {
                        let outcome = std::thread::scope(|s| {
                            std::thread::Builder::new()
                                .name(format!("test {name}"))
                                .spawn_scoped(s, move || run_one(body))
                                .unwrap()
                                .join()
                                .unwrap_or_else(|_| Outcome::Failed("the test thread died".into()))
                        });
                        let line = match &outcome {
                            Outcome::Passed => "ok".to_owned(),
                            Outcome::Failed(_) => "FAILED".to_owned(),
                            Outcome::Ignored(why) => format!("ignored, {why}"),
                        };
                        println!("test {name} ... {line}");
                        let _ = std::io::stdout().flush();
                        results.lock().unwrap().push((name, outcome));
                    };
                    loop {
                        let Some(job) = queue.lock().unwrap().pop_front() else {
                            break;
                        };
                        match job {
                            Job::One(test) => run(test),
                            Job::InOrder(steps, teardown) => {
                                for step in steps {
                                    run(step);
                                }
                                teardown();
                            }
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let results = std::mem::take(&mut *results.lock().unwrap());
    let (mut passed, mut ignored) = (0, 0);
    let mut failed = Vec::new();
    for (name, outcome) in results {
        match outcome {
            Outcome::Passed => passed += 1,
            Outcome::Ignored(_) => ignored += 1,
            Outcome::Failed(why) => failed.push((name, why)),
        }
    }
    failed.sort();
    if !failed.is_empty() {
        println!("\nfailures:\n");
        for (name, why) in &failed {
            println!("---- {name} ----\n{why}\n");
        }
        println!("failures:");
        for (name, _) in &failed {
            println!("    {name}");
        }
    }
    let run = passed + failed.len() + ignored;
    println!(
        "\ntest result: {}. {passed} passed; {} failed; {ignored} ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        total - run,
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}
