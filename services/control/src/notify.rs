//! Change announcements: after every successful write, a core NATS message on the
//! bus's config-changed subject tells the other services to drop the cached
//! lookups of that account that the change can affect (`ConfigChange`, owned by
//! the control client that reads it).
//! A lost announcement only delays a change until the caches' TTL, so a failed
//! publish is logged, never returned to the client.

pub use foco_control_client::ChangeKind;
use foco_control_client::ConfigChange;
use uuid::Uuid;

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
        let notice = ConfigChange {
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
