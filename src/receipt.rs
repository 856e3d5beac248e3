//! Receipts: how an input that acknowledges what it receives (RELP) learns that every output
//! took a message.
//!
//! An input hands the loop each batch with a [`Receipt`]: the transactions (connection and
//! transaction number) its messages came in. The loop gives every output that takes some of
//! the batch a share of the receipt (an `Arc`), and each output keeps its share until the
//! output took those messages: written to the file, accepted by journald, on a forward
//! output's disk queue, or acknowledged by its remote. When the last share goes, the receipt
//! posts its transactions on the input's [`AckBoard`] and wakes the input, which answers them.
//! A message no output takes (unrouted, or dropped by a `drop` queue, both counted) is answered
//! once routing is done. A holder that gives a receipt up without its messages taken (a stop
//! that ran out of time) fails it: nothing is answered, and the sender sends them again.
//!
//! From an input that keeps a read position (the journal, the kernel log), a receipt also
//! carries the position the input will save once it is posted ([`Mark`]): an output with a
//! disk queue writes it with the batch's records, so that the position and the messages reach
//! the disk together (see `forward::disk`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A transaction to answer: the connection (its poll token in the input) and the number.
pub(crate) type Transaction = (usize, u32);

/// Where one input collects the transactions it may answer.
pub struct AckBoard {
    done: Mutex<Vec<Transaction>>,
    waker: Arc<mio::Waker>,
}

impl AckBoard {
    /// A board that wakes its input through `waker`.
    pub fn new(waker: Arc<mio::Waker>) -> Arc<AckBoard> {
        Arc::new(AckBoard {
            done: Mutex::new(Vec::new()),
            waker,
        })
    }

    /// The transactions posted since the last call.
    pub fn take(&self) -> Vec<Transaction> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn post(&self, transactions: &[Transaction]) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let wake = done.is_empty();
        done.extend_from_slice(transactions);
        drop(done);
        // Woken once for everything posted until it looks.
        if wake {
            let _ = self.waker.wake();
        }
    }
}

/// An input's read position as of the end of one batch: the key names the input (its
/// position file under state-dir), the text is what that file would hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The input's position file name (`journal.cursor`, `kmsg.position`).
    pub key: &'static str,
    /// What the file would hold.
    pub text: String,
}

/// The answers owed for one batch, posted when the last holder lets go, unless one failed it.
pub struct Receipt {
    board: Arc<AckBoard>,
    transactions: Vec<Transaction>,
    failed: AtomicBool,
    position: Option<Mark>,
}

impl Receipt {
    /// A receipt for `transactions`, to be posted on `board`; `position` is where the input
    /// stands once they are.
    pub fn new(
        board: Arc<AckBoard>,
        transactions: Vec<Transaction>,
        position: Option<Mark>,
    ) -> Receipt {
        Receipt {
            board,
            transactions,
            failed: AtomicBool::new(false),
            position,
        }
    }

    /// The input's position once this batch is taken, if it keeps one.
    pub fn position(&self) -> Option<&Mark> {
        self.position.as_ref()
    }

    /// Its messages will not be taken: answer none of them.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if !self.failed.load(Ordering::Relaxed) {
            self.board.post(&self.transactions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> (mio::Poll, Arc<AckBoard>) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(1)).unwrap());
        (poll, AckBoard::new(waker))
    }

    #[test]
    fn posts_when_the_last_share_goes() {
        let (_poll, board) = board();
        let receipt = Arc::new(Receipt::new(board.clone(), vec![(2, 5), (3, 9)], None));
        let other = receipt.clone();
        drop(receipt);
        assert!(board.take().is_empty(), "one output still holds it");
        drop(other);
        assert_eq!(board.take(), vec![(2, 5), (3, 9)]);
        assert!(board.take().is_empty());
    }

    #[test]
    fn a_failed_receipt_answers_nothing() {
        let (_poll, board) = board();
        let receipt = Arc::new(Receipt::new(board.clone(), vec![(2, 5)], None));
        let other = receipt.clone();
        other.fail();
        drop(other);
        drop(receipt);
        assert!(board.take().is_empty());
    }
}
