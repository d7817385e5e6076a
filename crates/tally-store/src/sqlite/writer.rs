//! The single writer: one thread owns the write connection and group-commits queued jobs.
//!
//! Requests hand the writer a job (a closure over the open transaction) through a bounded channel and
//! wait. The writer takes every job queued at that moment, runs each inside its own savepoint (a failed
//! job rolls back alone), commits once — one fsync for the whole group — and only then answers every
//! waiter. Durability therefore costs one sync per group, not per request, and an answer always means
//! the data is on disk. The channel bound is the backpressure: when the writer falls behind, senders
//! wait instead of piling up memory.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::keys::KeyIndex;
use super::rollups::RollupBuffer;
use crate::error::{StoreError, StoreResult};

/// Jobs waiting for the writer at most; senders wait beyond this.
const QUEUE_CAPACITY: usize = 1024;
/// A group stops taking jobs once it holds this many events.
const MAX_GROUP_WEIGHT: usize = 50_000;

/// What a job sees: the connection inside the open transaction, and the writer's key index.
pub(crate) struct WriteCtx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) keys: &'a mut KeyIndex,
    /// Rollup changes of this job; merged into the group's when the job succeeds.
    pub(crate) rollups: RollupBuffer,
    /// Set by a job that must leave no trace although it returns `Ok` (a refused all-or-nothing batch).
    pub(crate) discard: bool,
}

trait Job: Send {
    fn weight(&self) -> usize;
    /// Tells whether the job rewrites rollups from stored events, so buffered changes of earlier
    /// jobs must reach the table first.
    fn rewrites_rollups(&self) -> bool;
    /// Runs the job; returns whether its changes are kept.
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool;
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

struct FnJob<T, F> {
    work: Option<F>,
    weight: usize,
    rewrites_rollups: bool,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for FnJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
{
    fn weight(&self) -> usize {
        self.weight
    }

    fn rewrites_rollups(&self) -> bool {
        self.rewrites_rollups
    }

    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(ctx)))
            .unwrap_or_else(|_| Err(StoreError::Database("a write job panicked".into())));
        let keep = outcome.is_ok() && !ctx.discard;
        self.result = Some(outcome);
        keep
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match (self.result, committed) {
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(error)) => Err(error),
            (Some(Err(error)), _) => Err(error),
            (None, _) => Err(StoreError::Database("write job did not run".into())),
        };
        // The waiter may have gone (client disconnected); the data is committed either way.
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on its own connection.
    pub(crate) fn spawn(conn: Connection) -> StoreResult<Writer> {
        let keys = KeyIndex::load(&conn)?;
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("tally-writer".into())
            .spawn(move || writer_loop(conn, keys, receiver))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `work` and waits until it is committed (or failed). `weight` is the number of events it
    /// writes, used to bound group size.
    pub(crate) async fn write<T, F>(&self, weight: usize, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(weight, false, work).await
    }

    /// Like [`Writer::write`], for work that recomputes rollups from stored events.
    pub(crate) async fn write_rebuilding<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(1, true, work).await
    }

    async fn submit<T, F>(&self, weight: usize, rewrites_rollups: bool, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(FnJob {
            work: Some(work),
            weight: weight.max(1),
            rewrites_rollups,
            result: None,
            reply,
        });
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking jobs, lets the queued ones commit, and waits for the thread to end.
    pub(crate) async fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn writer_loop(conn: Connection, mut keys: KeyIndex, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut weight = first.weight();
        let mut jobs = vec![first];
        while weight < MAX_GROUP_WEIGHT {
            match receiver.try_recv() {
                Ok(job) => {
                    weight += job.weight();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let committed = commit_group(&conn, &mut keys, &mut jobs);
        let elapsed = started.elapsed().as_secs_f64();
        metrics::histogram!("tally_commit_seconds").record(elapsed);
        metrics::histogram!("tally_commit_group_jobs").record(jobs.len() as f64);
        metrics::histogram!("tally_commit_group_events").record(weight as f64);
        if let Err(error) = &committed {
            tracing::error!(%error, jobs = jobs.len(), "group commit failed");
        }
        for job in jobs {
            job.finish(committed.clone());
        }
    }
    // Leave a compact database behind: copy the whole WAL back and truncate it.
    if let Err(error) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(%error, "final checkpoint failed");
    }
    tracing::debug!("writer stopped");
}

fn commit_group(
    conn: &Connection,
    keys: &mut KeyIndex,
    jobs: &mut [Box<dyn Job>],
) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let mut group = RollupBuffer::default();
        for job in jobs.iter_mut() {
            if job.rewrites_rollups() && !group.is_empty() {
                group.flush(conn)?;
            }
            conn.execute_batch("SAVEPOINT job")?;
            let mut ctx = WriteCtx {
                conn,
                keys: &mut *keys,
                rollups: RollupBuffer::default(),
                discard: false,
            };
            if job.run(&mut ctx) {
                conn.execute_batch("RELEASE job")?;
                group.absorb(ctx.rollups)?;
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            }
        }
        group.flush(conn)?;
        conn.execute_batch("COMMIT")?;
        Ok(())
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}
