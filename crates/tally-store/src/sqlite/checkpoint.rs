//! Background WAL checkpoints, so copying committed pages into the database file never stalls the
//! writer. The writer connection has automatic checkpoints turned off; this thread runs a passive
//! checkpoint (which never blocks the writer or readers) every half second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{StoreError, StoreResult};

const INTERVAL: Duration = Duration::from_millis(500);

/// The running checkpoint thread.
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing through its own connection.
    pub(crate) fn spawn(conn: Connection) -> StoreResult<Checkpointer> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("tally-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // Parked rather than asleep, so `stop` wakes it at once instead of waiting out
                    // the interval; an early wake-up only brings a harmless checkpoint forward.
                    std::thread::park_timeout(INTERVAL);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                    });
                    match result {
                        Ok((log, done)) if log > 0 => {
                            metrics::gauge!("tally_wal_frames").set(log as f64);
                            tracing::trace!(log, done, "checkpoint");
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "checkpoint failed"),
                    }
                }
            })
            .map_err(|e| {
                StoreError::Database(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}
