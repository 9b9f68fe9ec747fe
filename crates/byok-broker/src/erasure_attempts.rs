//! Failed erasure proofs in a row on this node (see [`crate::erasure`]): after enough of them
//! the operator is alerted.

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Default)]
pub(crate) struct ErasureAttempts(AtomicU32);

impl ErasureAttempts {
    /// A proof succeeded: the count starts again.
    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// A proof failed; returns how many failed in a row.
    pub(crate) fn failed(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }
}
