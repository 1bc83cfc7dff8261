//! Change announcements: after every successful write, a core NATS message on the
//! bus's config-changed subject tells the other services to drop cached lookups.
//! A lost announcement only delays a change until the caches' TTL, so a failed
//! publish is logged, never returned to the client.

use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Account,
    Source,
    Rule,
    Route,
}

#[derive(Serialize)]
struct ChangeNotice {
    account_id: String,
    kind: ChangeKind,
}

#[derive(Clone)]
pub struct ChangeNotifier {
    nats: async_nats::Client,
    subject: String,
}

impl ChangeNotifier {
    pub fn new(nats: async_nats::Client, subject: String) -> Self {
        Self { nats, subject }
    }

    pub async fn announce(&self, account_id: Uuid, kind: ChangeKind) {
        let notice = ChangeNotice {
            account_id: account_id.to_string(),
            kind,
        };
        let payload = match serde_json::to_vec(&notice) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!(%error, "cannot encode change notice");
                return;
            }
        };
        if let Err(error) = self
            .nats
            .publish(self.subject.clone(), payload.into())
            .await
        {
            tracing::warn!(%error, %account_id, ?kind, "change notice not published; caches refresh at their TTL");
        }
    }
}
