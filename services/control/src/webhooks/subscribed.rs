//! Which accounts have an enabled status webhook endpoint, remembered.
//!
//! The status feed carries every change of every SMS, and most accounts have
//! no endpoint: asking Postgres for every batch of changes cost it a statement
//! (and a pool round trip) per batch, about as much as the rest of the status
//! worker. An account's answer is kept for [`REMEMBERED_FOR`] and dropped at
//! once when control announces a change of its endpoints or of the account
//! (`ChangeKind::Endpoint`, `ChangeKind::Account`), whichever replica made it.
//!
//! A stale "has one" costs nothing: the delivery statement joins enabled
//! endpoints itself. A stale "has none" would skip deliveries, so it lasts at
//! most [`REMEMBERED_FOR`] after a lost announcement, and a lookup that was
//! under way when an announcement arrived is used for its batch but not
//! remembered.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foco_control_client::{ChangeKind, ConfigChange};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long an answer is used without asking again: the longest a new
/// endpoint waits for its first deliveries when its announcement is lost.
pub(super) const REMEMBERED_FOR: Duration = Duration::from_secs(10);

/// Answers kept before expired ones are swept out.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Clone)]
pub(super) struct SubscribedAccounts {
    pool: PgPool,
    remembered: Arc<Mutex<Remembered>>,
}

#[derive(Default)]
struct Remembered {
    answers: HashMap<Uuid, Answer>,
    /// Moves on every forgetting: a lookup that started before one does not
    /// keep its answers.
    generation: u64,
}

#[derive(Clone, Copy)]
struct Answer {
    subscribed: bool,
    asked_at: Instant,
}

impl SubscribedAccounts {
    pub(super) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            remembered: Arc::default(),
        }
    }

    /// Which of `accounts` have an enabled endpoint; Postgres is asked only
    /// about those without a recent answer.
    pub(super) async fn of(
        &self,
        accounts: impl IntoIterator<Item = Uuid>,
    ) -> Result<HashSet<Uuid>, sqlx::Error> {
        let now = Instant::now();
        let mut subscribed = HashSet::new();
        let mut unknown = HashSet::new();
        let generation = {
            let remembered = self.lock();
            for account in accounts {
                match remembered.answers.get(&account) {
                    Some(answer) if now.duration_since(answer.asked_at) < REMEMBERED_FOR => {
                        if answer.subscribed {
                            subscribed.insert(account);
                        }
                    }
                    _ => {
                        unknown.insert(account);
                    }
                }
            }
            remembered.generation
        };
        if unknown.is_empty() {
            return Ok(subscribed);
        }
        let asked: Vec<Uuid> = unknown.into_iter().collect();
        let found: HashSet<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT account_id FROM endpoints WHERE enabled AND account_id = ANY ($1)",
        )
        .bind(&asked)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        let mut remembered = self.lock();
        if remembered.generation == generation {
            if remembered.answers.len() + asked.len() > SWEEP_ABOVE {
                remembered
                    .answers
                    .retain(|_, answer| now.duration_since(answer.asked_at) < REMEMBERED_FOR);
            }
            for account in &asked {
                let answer = Answer {
                    subscribed: found.contains(account),
                    asked_at: now,
                };
                remembered.answers.insert(*account, answer);
            }
        }
        subscribed.extend(found);
        Ok(subscribed)
    }

    /// Drops what a change can make wrong: the account's answer, or every
    /// answer for a change that cannot be read. Other kinds change nothing here.
    pub(super) fn apply(&self, change: Option<&ConfigChange>) {
        let account = match change {
            Some(change) if matches!(change.kind, ChangeKind::Endpoint | ChangeKind::Account) => {
                Uuid::parse_str(&change.account_id).ok()
            }
            Some(_) => return,
            None => None,
        };
        let mut remembered = self.lock();
        remembered.generation += 1;
        match account {
            Some(account) => {
                remembered.answers.remove(&account);
            }
            None => remembered.answers.clear(),
        }
    }

    /// Applies the announcements on `subject` until shutdown. NATS keeps the
    /// subscription across reconnects; announcements sent while it was away
    /// are lost, which [`REMEMBERED_FOR`] bounds.
    pub(super) async fn watch(
        self,
        nats: async_nats::Client,
        subject: String,
        shutdown: CancellationToken,
    ) {
        let announcements = loop {
            match nats.subscribe(subject.clone()).await {
                Ok(subscription) => break subscription,
                Err(error) => {
                    tracing::warn!(%error, "cannot follow configuration changes; endpoint lookups rely on their expiry");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(REMEMBERED_FOR) => {}
                    }
                }
            }
        };
        foco_control_client::apply_changes(announcements, shutdown, |change| self.apply(change))
            .await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        // Nothing here panics while holding the lock; a poisoned one still holds
        // consistent answers.
        self.remembered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use foco_testkit::TestDatabase;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// A migrated database (dropped with it), its pool, and answers from it.
    async fn fixture() -> (TestDatabase, PgPool, SubscribedAccounts) {
        let database = TestDatabase::create().await;
        crate::MIGRATOR.run(&database.pool).await.expect("migrate");
        let pool = database.pool.clone();
        let accounts = SubscribedAccounts::new(pool.clone());
        (database, pool, accounts)
    }

    async fn account(pool: &PgPool, name: &str) -> Uuid {
        let id = Uuid::new_v4();
        sqlx::query("INSERT INTO accounts (id, name) VALUES ($1, $2)")
            .bind(id)
            .bind(name)
            .execute(pool)
            .await
            .expect("account");
        id
    }

    async fn add_endpoint(pool: &PgPool, account: Uuid) {
        sqlx::query(
            "INSERT INTO endpoints (id, account_id, name, url, secret_sealed) \
             VALUES ($1, $2, 'hooks', 'https://example.com/hooks', '\\x00')",
        )
        .bind(Uuid::new_v4())
        .bind(account)
        .execute(pool)
        .await
        .expect("endpoint");
    }

    fn change(account: Uuid, kind: ChangeKind) -> ConfigChange {
        ConfigChange {
            account_id: account.to_string(),
            kind,
        }
    }

    #[tokio::test]
    async fn an_answer_is_kept_until_its_account_changes() {
        let (_database, pool, accounts) = fixture().await;
        let with = account(&pool, "with").await;
        let without = account(&pool, "without").await;
        add_endpoint(&pool, with).await;
        assert_eq!(
            accounts.of([with, without, with]).await.unwrap(),
            HashSet::from([with])
        );

        // Remembered: Postgres is not asked again.
        add_endpoint(&pool, without).await;
        assert_eq!(
            accounts.of([with, without]).await.unwrap(),
            HashSet::from([with])
        );

        // Another account's change, or one that is not about endpoints, keeps it.
        accounts.apply(Some(&change(with, ChangeKind::Endpoint)));
        accounts.apply(Some(&change(without, ChangeKind::Route)));
        assert_eq!(accounts.of([without]).await.unwrap(), HashSet::new());

        accounts.apply(Some(&change(without, ChangeKind::Endpoint)));
        assert_eq!(
            accounts.of([with, without]).await.unwrap(),
            HashSet::from([with, without])
        );
    }

    #[tokio::test]
    async fn an_account_change_or_an_unreadable_one_forgets() {
        let (_database, pool, accounts) = fixture().await;
        let first = account(&pool, "first").await;
        let second = account(&pool, "second").await;
        assert!(accounts.of([first, second]).await.unwrap().is_empty());
        add_endpoint(&pool, first).await;
        add_endpoint(&pool, second).await;

        accounts.apply(Some(&change(first, ChangeKind::Account)));
        assert_eq!(
            accounts.of([first, second]).await.unwrap(),
            HashSet::from([first])
        );
        accounts.apply(None);
        assert_eq!(
            accounts.of([first, second]).await.unwrap(),
            HashSet::from([first, second])
        );
    }

    #[tokio::test]
    async fn an_answer_expires() {
        let (_database, pool, accounts) = fixture().await;
        let late = account(&pool, "late").await;
        assert!(accounts.of([late]).await.unwrap().is_empty());
        add_endpoint(&pool, late).await;
        assert!(accounts.of([late]).await.unwrap().is_empty());
        // The clock moves on; it runs again for Postgres's own timeouts.
        tokio::time::pause();
        tokio::time::advance(REMEMBERED_FOR).await;
        tokio::time::resume();
        assert_eq!(accounts.of([late]).await.unwrap(), HashSet::from([late]));
    }

    /// What another replica announces reaches this one's answers.
    #[tokio::test]
    async fn announcements_on_the_bus_are_applied() {
        let (_database, pool, accounts) = fixture().await;
        let announced = account(&pool, "announced").await;
        assert!(accounts.of([announced]).await.unwrap().is_empty());
        let nats = async_nats::connect(foco_testkit::nats_url()).await.unwrap();
        let subject = format!("t-{}.foco.config.changed", foco_testkit::random_token(8));
        let shutdown = CancellationToken::new();
        let watching = tokio::spawn(accounts.clone().watch(
            nats.clone(),
            subject.clone(),
            shutdown.clone(),
        ));

        let notice = serde_json::to_vec(&change(announced, ChangeKind::Endpoint)).unwrap();
        foco_testkit::wait_for("the announcement to be applied", WAIT, || {
            let (nats, subject, notice) = (nats.clone(), subject.clone(), notice.clone());
            let accounts = accounts.clone();
            async move {
                // Sent until the watch, subscribing meanwhile, has taken one.
                nats.publish(subject, notice.into()).await.unwrap();
                (!accounts.lock().answers.contains_key(&announced)).then_some(())
            }
        })
        .await;
        shutdown.cancel();
        watching.await.unwrap();
    }

    #[tokio::test]
    async fn a_lookup_under_way_when_a_change_comes_is_not_kept() {
        let (_database, pool, accounts) = fixture().await;
        let racing = account(&pool, "racing").await;
        // The change arrives while the lookup waits for Postgres: hold every
        // connection so the lookup cannot start its statement yet.
        let mut held = Vec::new();
        for _ in 0..pool.options().get_max_connections() {
            held.push(pool.acquire().await.unwrap());
        }
        let lookup = tokio::spawn({
            let accounts = accounts.clone();
            async move { accounts.of([racing]).await.unwrap() }
        });
        // On this test's one thread, the spawned lookup runs when this task
        // yields, reads what it remembers and waits for a connection.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!lookup.is_finished(), "the lookup waits for Postgres");
        accounts.apply(Some(&change(racing, ChangeKind::Endpoint)));
        drop(held);
        assert!(
            lookup.await.unwrap().is_empty(),
            "answered as Postgres saw it"
        );
        add_endpoint(&pool, racing).await;
        assert_eq!(
            accounts.of([racing]).await.unwrap(),
            HashSet::from([racing]),
            "the answer from before the change was not kept"
        );
    }
}
