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
/// with the timeouts above.
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
