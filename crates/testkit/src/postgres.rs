//! One database per test, created on the local server and dropped afterwards.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

/// Server-level URL used to create databases: `FOCO_TEST_DATABASE_URL`, else the
/// local server as `postgres`.
fn admin_url() -> String {
    std::env::var("FOCO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDatabase {
    /// Creates an empty database; the caller runs the migrations it needs.
    pub async fn create() -> Self {
        let admin_url = admin_url();
        let name = format!("foco_test_{}", crate::random_token(16));
        let mut admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .expect("connect to test Postgres (is it running on 127.0.0.1:5432?)");
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        admin.close().await;
        let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
        let url = format!("{base}/{name}");
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .expect("connect to test database");
        let _ = &mut admin;
        Self { name, url, pool }
    }
}

impl TestDatabase {
    /// The server's address, from the URL.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let authority = authority(&self.url).replace("localhost", "127.0.0.1");
        authority
            .parse()
            .unwrap_or_else(|_| panic!("the test database URL names no address: {}", self.url))
    }

    /// The database's URL with `addr` (a [`crate::Proxy`]) in place of the
    /// server.
    pub fn url_through(&self, addr: std::net::SocketAddr) -> String {
        self.url
            .replacen(&authority(&self.url), &addr.to_string(), 1)
    }
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or_default().to_owned()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = admin_url();
        // Drop runs inside the test's runtime; a separate thread with its own
        // runtime can block on the cleanup without stalling it.
        let handle = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url)
                    .await
                {
                    let _ = admin
                        .execute(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn reads_the_authority_of_a_database_url() {
        assert_eq!(
            authority("postgres://postgres@127.0.0.1:5432/foco_test_x"),
            "127.0.0.1:5432"
        );
        assert_eq!(authority("postgres://user:secret@db:6432/app"), "db:6432");
    }
}
