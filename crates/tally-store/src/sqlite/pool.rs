//! A small pool of read-only connections; WAL lets them read while the writer commits.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::error::{StoreError, StoreResult};

/// Read connections, handed out one per blocking task.
pub(crate) struct ReadPool {
    connections: Mutex<Vec<Connection>>,
    available: Semaphore,
}

impl ReadPool {
    pub(crate) fn new(connections: Vec<Connection>) -> Arc<Self> {
        let count = connections.len();
        Arc::new(ReadPool {
            connections: Mutex::new(connections),
            available: Semaphore::new(count),
        })
    }

    /// Runs `work` on a pooled connection in a blocking thread.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .available
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let conn = self
            .connections
            .lock()
            .map_err(|_| StoreError::Database("read pool poisoned".into()))?
            .pop()
            .ok_or(StoreError::Closed)?;
        let pool = Arc::clone(self);
        let joined = tokio::task::spawn_blocking(move || {
            let result = work(&conn);
            if let Ok(mut conns) = pool.connections.lock() {
                conns.push(conn);
            }
            result
        })
        .await;
        joined.map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}
