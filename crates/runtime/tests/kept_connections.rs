//! A batch writer's kept connections: reused as they are after a clean use,
//! replaced after a failed one, and a connection the server dropped costs one
//! failed statement, not the writer.

use std::time::Duration;

use foco_runtime::postgres::{self, KeptConnections};
use foco_testkit::TestDatabase;

async fn backend_pid(connections: &KeptConnections) -> Result<i32, sqlx::Error> {
    let mut connection = connections.acquire().await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *connection)
        .await?;
    connection.keep();
    Ok(pid)
}

#[tokio::test]
async fn kept_connections_are_reused_until_a_use_fails() {
    let database = TestDatabase::create().await;
    let pool = postgres::connect(&database.url, 4).await.unwrap();
    let connections = KeptConnections::new(pool, 1);

    let first = backend_pid(&connections).await.unwrap();
    assert_eq!(
        backend_pid(&connections).await.unwrap(),
        first,
        "kept as it was"
    );

    // A use that does not end in `keep` (an error, a dropped future) gives the
    // connection up.
    {
        let mut connection = connections.acquire().await.unwrap();
        let refused = sqlx::query("SELECT * FROM no_such_table")
            .execute(&mut *connection)
            .await;
        assert!(refused.is_err());
    }
    let second = backend_pid(&connections).await.unwrap();
    assert_ne!(second, first, "a fresh connection after a failed use");

    // The server ends the kept connection: the next statement fails, the one
    // after it runs on a new connection.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(second)
        .execute(&database.pool)
        .await
        .unwrap();
    foco_testkit::wait_for("the backend to exit", Duration::from_secs(10), || async {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(second)
                .fetch_one(&database.pool)
                .await
                .unwrap();
        (!alive).then_some(())
    })
    .await;
    assert!(
        backend_pid(&connections).await.is_err(),
        "the dead connection fails once"
    );
    let third = backend_pid(&connections).await.unwrap();
    assert_ne!(third, second);
}

#[tokio::test]
async fn at_most_size_connections_are_in_use() {
    let database = TestDatabase::create().await;
    let pool = postgres::connect(&database.url, 4).await.unwrap();
    let connections = KeptConnections::new(pool, 2);
    let one = connections.acquire().await.unwrap();
    let _two = connections.acquire().await.unwrap();
    let third = connections.acquire();
    tokio::pin!(third);
    tokio::select! {
        biased;
        _ = &mut third => panic!("a third must wait while two are in use"),
        () = std::future::ready(()) => {}
    }
    one.keep();
    third.await.unwrap().keep();
}
