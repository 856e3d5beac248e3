//! The server's RELP session (what a `relp://` input does with what a client sends), fed in
//! arbitrary chunkings, its messages answered as they come or at the end (the first byte
//! chooses): the messages handed on are the same whatever the cuts, with transaction numbers
//! strictly in sequence and none twice; nothing is handed on after the session ended or
//! closed; every answer written is a reply a client (librelp's, ours) reads, to a transaction
//! the client sent (or `serverclose`); and the count of unanswered transactions is exact.
#![no_main]
#[path = "cuts.rs"]
mod cuts;
use libfuzzer_sys::fuzz_target;
use syslog::relp::server::Session;
use syslog::relp::{Reader, Reply, replies};

/// The messages handed on (data, truncated, transaction) and whether the session ended.
type Outcome = (Vec<(Vec<u8>, bool, u32)>, bool);

fn run(max: usize, answer_at_once: bool, chunks: &[&[u8]]) -> Outcome {
    let mut session = Session::new(max);
    let mut handed: Vec<(Vec<u8>, bool, u32)> = Vec::new();
    let mut answered = 0;
    let mut ended = false;
    let mut wire = Vec::new();
    for chunk in chunks {
        let before = handed.len();
        let result = session.feed(chunk, |data, truncated, txnr| {
            assert!(data.len() <= max, "data over the limit was handed on");
            handed.push((data.to_vec(), truncated, txnr));
        });
        if ended {
            assert_eq!(
                handed.len(),
                before,
                "a message handed on after the session ended"
            );
        }
        if result.is_err() {
            ended = true;
        }
        if answer_at_once {
            for &(_, _, txnr) in &handed[answered..] {
                session.answer(txnr);
            }
            answered = handed.len();
        }
        assert_eq!(session.unanswered(), handed.len() - answered);
        wire.extend_from_slice(session.answers());
        session.written(session.answers().len());
    }
    for &(_, _, txnr) in &handed[answered..] {
        session.answer(txnr);
    }
    assert_eq!(session.unanswered(), 0);
    session.server_close();
    wire.extend_from_slice(session.answers());
    session.written(session.answers().len());
    assert!(session.done(), "the session goes on after serverclose");
    for pair in handed.windows(2) {
        assert!(
            pair[0].2 < pair[1].2,
            "transactions out of sequence: {pair:?}"
        );
    }
    let mut read = Vec::new();
    replies(&mut Reader::for_replies(), &wire, &mut read)
        .unwrap_or_else(|e| panic!("an answer a client cannot read: {e:?}"));
    for reply in &read {
        if let Reply::Response { txnr, .. } = reply {
            assert!(*txnr >= 1, "a response to transaction 0");
        }
    }
    (handed, ended)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let max = 1 + usize::from(data[0] & 0x7f);
    let answer_at_once = data[0] & 0x80 != 0;
    let (cuts, stream) = data[1..].split_at(8);
    let chunks = cuts::chunks(cuts, stream);
    assert_eq!(
        run(max, answer_at_once, &chunks).0,
        run(max, answer_at_once, &[stream]).0,
        "messages depend on the cuts"
    );
});
