//! Which shard a thread is: set once by each shard's thread, read by
//! whatever that thread serves (the logs, the HTTP reflection).

use std::cell::Cell;

thread_local! {
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard this thread is, from 0: `None` outside a shard thread (and
/// when a server runs with one thread, on its caller's runtime). With
/// `--log-format json`, each line logged by a shard carries it as `shard`.
pub fn current_shard() -> Option<usize> {
    CURRENT.try_with(Cell::get).ok().flatten()
}

/// Makes this thread shard `index`, for the rest of its life.
pub(super) fn set(index: usize) {
    CURRENT.set(Some(index));
}
