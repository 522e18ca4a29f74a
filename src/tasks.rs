//! The connection tasks of one server: spawned, waited for at shutdown, and
//! aborted when shutdown is forced or times out.
//!
//! A `JoinSet` would keep every finished task (its memory, and an entry to
//! reap) until someone joins it, so a burst of connections that end while
//! nothing new is accepted would leave them all behind. Here a finished task
//! leaves nothing: the tracker forgets it, and it removes its own abort
//! handle. The map is touched twice per connection, never per message.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::AbortHandle;
use tokio_util::task::TaskTracker;

/// Abort handles of the running tasks, by a per-server id.
type Running = Arc<Mutex<HashMap<u64, AbortHandle>>>;

/// The running connection tasks of one server.
#[derive(Default)]
pub(crate) struct ConnTasks {
    tracker: TaskTracker,
    running: Running,
    next_id: AtomicU64,
}

impl ConnTasks {
    /// Runs `task` on the current runtime, tracked until it ends.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            id,
            running: self.running.clone(),
        };
        // Held across the spawn, so the handle is in the map before the
        // task can end and remove it.
        let mut running = lock(&self.running);
        let handle = self.tracker.spawn(async move {
            let _entry = entry;
            task.await;
        });
        running.insert(id, handle.abort_handle());
    }

    /// Resolves once every task has ended. Tasks spawned after this is
    /// first polled are still waited for.
    pub(crate) async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Ends every task at its next await, and waits until they are gone
    /// (their sockets closed).
    pub(crate) async fn abort_all(&self) {
        // Collected first: an aborted task removes its own entry.
        let handles: Vec<AbortHandle> = lock(&self.running).values().cloned().collect();
        for handle in handles {
            handle.abort();
        }
        self.wait().await;
    }
}

/// A task's place in the map, removed when the task ends however it ends
/// (including being aborted).
struct Entry {
    id: u64,
    running: Running,
}

impl Drop for Entry {
    fn drop(&mut self) {
        lock(&self.running).remove(&self.id);
    }
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: the map
/// stays consistent between statements.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::ConnTasks;
    use std::time::Duration;

    #[tokio::test]
    async fn finished_tasks_leave_nothing_and_abort_ends_the_rest() {
        let tasks = ConnTasks::default();
        for _ in 0..10 {
            tasks.spawn(async {});
        }
        tasks.spawn(std::future::pending());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(super::lock(&tasks.running).len(), 1);
        assert_eq!(tasks.tracker.len(), 1);
        tokio::time::timeout(Duration::from_secs(5), tasks.abort_all())
            .await
            .expect("aborted tasks end");
        assert!(super::lock(&tasks.running).is_empty());
        assert!(tasks.tracker.is_empty());
    }
}
