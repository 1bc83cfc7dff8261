//! The Postgres pool of the services on the hot path (rules, sender): every wait
//! is bounded, so a Postgres that stops answering fails statements (and their
//! events or jobs are retried) instead of holding work, and the stream messages
//! behind it, forever.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Longest a statement may run on the server.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a transaction may sit idle on the server (a client that went away
/// mid-transaction must not keep its locks).
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a caller waits for a free connection.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects a pool of at most `max_connections` to `url`, each connection
/// with the timeouts above and with sequential scans priced out of its plans
/// (`enable_seqscan = off`).
///
/// The statements of rules and the sender look rows up by key, one batch at a
/// time, in tables (`messages`, `scheduled_jobs`, `seen_events`,
/// `event_reports`) that start empty and grow under them. Postgres plans a
/// prepared statement for its first five runs and then keeps one generic plan,
/// made with the table sizes of that moment: planned while `messages` held a
/// few hundred rows, the sender's batched outcome update (and the foreign-key
/// checks of the rows it inserted) scanned the whole table for every batch once
/// it held tens of thousands, until an `ANALYZE` replaced the plan. Planning
/// every execution instead (`plan_cache_mode = force_custom_plan`) fixed that
/// but cost PostgreSQL about 40 % more CPU per SMS. With sequential scans
/// priced out, the generic plan uses the key's index at any table size, and a
/// statement with no usable index still scans (for these pools: small tables
/// and rare maintenance statements). Pools for ad-hoc queries (control's API)
/// do not come from here.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    connect_with(PgConnectOptions::from_str(url)?, max_connections).await
}

/// As [`connect`], for writes whose loss in a crash of the Postgres server
/// itself costs nothing that another durable record does not already keep:
/// their commits do not wait for the WAL to reach disk
/// (`synchronous_commit = off`). Such a commit is atomic and ordered like any
/// other; only the last fraction of a second of them can be lost, and only when
/// the server (not the client) crashes. Never for a write that is the only
/// record of accepted work.
pub async fn connect_without_commit_wait(
    url: &str,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.options([("synchronous_commit", "off")]);
    connect_with(options, max_connections).await
}

async fn connect_with(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let options = options.options([
        ("enable_seqscan", "off".to_owned()),
        (
            "statement_timeout",
            STATEMENT_TIMEOUT.as_millis().to_string(),
        ),
        (
            "idle_in_transaction_session_timeout",
            IDLE_IN_TRANSACTION_TIMEOUT.as_millis().to_string(),
        ),
    ]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // No ping before every statement: it is a round trip (and a wake-up of
        // the server's backend) per statement on the hot path. A connection that
        // died while idle fails its next statement instead, which is closed and
        // retried like any failed statement (events and jobs are retried), and the
        // pool opens a fresh one.
        .test_before_acquire(false)
        .connect_with(options)
        .await
}

/// Errors that every retry of the same statement with the same data would meet
/// again: data exceptions (SQLSTATE class 22, such as a NUL byte in text),
/// integrity violations (23) and program limits such as an index row too large
/// (54). Work that fails this way is recorded as failed, not retried.
pub fn is_deterministic(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    database.code().is_some_and(|code| {
        code.starts_with("22") || code.starts_with("23") || code.starts_with("54")
    })
}

/// Connections a batch writer keeps for itself, at most `size` in use at once.
///
/// A statement run on `&PgPool` pays two extra round trips beyond its own: the
/// pool tests a connection with a ping when it is handed back (and, unless
/// disabled, when it is taken). A writer that sends a statement every few
/// hundred microseconds keeps its connections here instead and pays for the
/// statement alone. A connection whose use did not end in [`Kept::keep`] (an
/// error, or a future dropped mid-statement) is closed; the next caller gets a
/// fresh one from the pool.
#[derive(Clone)]
pub struct KeptConnections {
    pool: PgPool,
    idle: std::sync::Arc<std::sync::Mutex<Vec<sqlx::pool::PoolConnection<sqlx::Postgres>>>>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl KeptConnections {
    pub fn new(pool: PgPool, size: usize) -> Self {
        Self {
            pool,
            idle: std::sync::Arc::default(),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(size.max(1))),
        }
    }

    /// The pool connections come from (for statements off the hot path).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits for one of the `size` connections; opens it from the pool when it
    /// is not open yet.
    pub async fn acquire(&self) -> Result<Kept, sqlx::Error> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let cached = self.idle.lock().map(|mut idle| idle.pop()).ok().flatten();
        let connection = match cached {
            Some(connection) => connection,
            None => self.pool.acquire().await?,
        };
        Ok(Kept {
            connection: Some(connection),
            home: self.idle.clone(),
            kept: false,
            _permit: permit,
        })
    }
}

/// One connection of [`KeptConnections`]; derefs to the connection.
pub struct Kept {
    connection: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    home: std::sync::Arc<std::sync::Mutex<Vec<sqlx::pool::PoolConnection<sqlx::Postgres>>>>,
    kept: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Kept {
    /// The statements succeeded and left no transaction open: the connection
    /// is kept for the next caller as it is.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl std::ops::Deref for Kept {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &Self::Target {
        self.connection.as_deref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Kept {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.connection
            .as_deref_mut()
            .expect("present until dropped")
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if self.kept
            && let Ok(mut idle) = self.home.lock()
        {
            idle.push(connection);
            return;
        }
        // Not returned to the pool: it may be broken or mid-statement. The
        // pool opens another when asked.
        let connection = connection.detach();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = sqlx::Connection::close(connection).await;
            });
        }
    }
}

/// How many batches arbitrate with `ON CONFLICT` after a plain insert met a
/// row that was already stored.
pub const ARBITRATED_AFTER_CONFLICT: u32 = 64;

/// The choice between two forms of one batched insert of rows that are nearly
/// always new (the sender's claims, rules' deduplication records): a plain
/// `INSERT`, which fails as a whole with a unique violation when any row is
/// already stored, and the same insert with `ON CONFLICT`, which answers for
/// such rows and never fails on them.
///
/// The `ON CONFLICT` form costs PostgreSQL more for every row, stored before or
/// not: it looks each key up in the unique index before inserting (a second
/// descent of the index beside the insert's own), inserts speculatively and
/// writes a confirmation record to the log (`scripts/pipeline-statements.sh`
/// prints what each of these statements costs PostgreSQL per SMS under load).
/// So a writer tries the plain form first; when it meets a stored row
/// (a redelivery, a retry of a job, an event sent twice) the statement changed
/// nothing, the batch is written again with `ON CONFLICT`, and the next
/// [`ARBITRATED_AFTER_CONFLICT`] batches use that form straight away: a stream
/// full of stored rows pays for one failed statement in that many batches.
#[derive(Debug, Default)]
pub struct FreshRowsFirst {
    arbitrated_batches_left: std::sync::atomic::AtomicU32,
}

/// Which form of the insert a batch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertForm {
    /// No `ON CONFLICT`: fails with a unique violation when a row is stored.
    Plain,
    /// With `ON CONFLICT`: rows already stored are answered, not inserted.
    Arbitrated,
}

impl FreshRowsFirst {
    pub const fn new() -> Self {
        Self {
            arbitrated_batches_left: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The form for the next batch.
    pub fn next_form(&self) -> InsertForm {
        use std::sync::atomic::Ordering;
        let counted_down = self.arbitrated_batches_left.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |left| left.checked_sub(1),
        );
        match counted_down {
            Ok(_) => InsertForm::Arbitrated,
            Err(_) => InsertForm::Plain,
        }
    }

    /// Whether `error`, from a plain insert, says a row was already stored;
    /// if so, the batches after this one arbitrate for a while.
    pub fn met_stored_row(&self, error: &sqlx::Error) -> bool {
        let stored =
            matches!(error, sqlx::Error::Database(database) if database.is_unique_violation());
        if stored {
            self.arbitrated_batches_left.store(
                ARBITRATED_AFTER_CONFLICT,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_insert_plainly_until_one_meets_a_stored_row_then_arbitrate_for_a_while() {
        let choice = FreshRowsFirst::default();
        assert_eq!(choice.next_form(), InsertForm::Plain);
        assert_eq!(choice.next_form(), InsertForm::Plain);

        // A failure of another kind changes nothing.
        assert!(!choice.met_stored_row(&sqlx::Error::PoolTimedOut));
        assert_eq!(choice.next_form(), InsertForm::Plain);

        choice.arbitrated_batches_left.store(
            ARBITRATED_AFTER_CONFLICT,
            std::sync::atomic::Ordering::Relaxed,
        );
        for _ in 0..ARBITRATED_AFTER_CONFLICT {
            assert_eq!(choice.next_form(), InsertForm::Arbitrated);
        }
        assert_eq!(choice.next_form(), InsertForm::Plain);
    }
}
