//! Stream, subject and consumer names, all derived from one configurable prefix so
//! that environments and tests can share a NATS server without seeing each other.

use std::borrow::Cow;

use crate::Service;

/// Every name on the bus, for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusNames {
    /// Lower-case subject prefix including the trailing dot, or empty.
    subject_prefix: String,
    /// Upper-case stream prefix including the trailing underscore, or empty.
    stream_prefix: String,
}

#[derive(Debug, thiserror::Error)]
#[error("bus prefix {0:?} may only contain ASCII letters, digits, '-' and '_'")]
pub struct InvalidPrefix(pub String);

impl BusNames {
    /// `prefix` may be empty (production default) or a short token such as `t42`.
    pub fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(InvalidPrefix(prefix.to_owned()));
        }
        if prefix.is_empty() {
            return Ok(Self {
                subject_prefix: String::new(),
                stream_prefix: String::new(),
            });
        }
        Ok(Self {
            subject_prefix: format!("{prefix}."),
            stream_prefix: format!("{}_", prefix.to_ascii_uppercase().replace('-', "_")),
        })
    }

    /// The prefix these names were made from (`FOCO_BUS_PREFIX`).
    pub fn prefix(&self) -> &str {
        self.subject_prefix.strip_suffix('.').unwrap_or_default()
    }

    pub fn events_stream(&self) -> String {
        format!("{}FOCO_EVENTS", self.stream_prefix)
    }

    /// `foco.events.<account>.<source>`
    pub fn events_subject(&self, account_id: &str, source_id: &str) -> String {
        format!(
            "{}foco.events.{}.{}",
            self.subject_prefix,
            subject_token(account_id),
            subject_token(source_id)
        )
    }

    pub fn events_filter(&self) -> String {
        format!("{}foco.events.>", self.subject_prefix)
    }

    pub fn sms_stream(&self) -> String {
        format!("{}FOCO_SMS", self.stream_prefix)
    }

    /// `foco.sms.<account>`
    pub fn sms_subject(&self, account_id: &str) -> String {
        format!(
            "{}foco.sms.{}",
            self.subject_prefix,
            subject_token(account_id)
        )
    }

    pub fn sms_filter(&self) -> String {
        format!("{}foco.sms.>", self.subject_prefix)
    }

    pub fn receipts_stream(&self) -> String {
        format!("{}FOCO_RECEIPTS", self.stream_prefix)
    }

    pub fn receipts_filter(&self) -> String {
        format!("{}foco.receipts.>", self.subject_prefix)
    }

    /// `foco.receipts.<account>.<kind>`: a `foco.v1.DeliveryReceipt` (`status`) or a
    /// `foco.v1.InboundSms` (`inbound`), published by ingress from provider callbacks.
    pub fn receipts_subject(&self, account_id: &str, kind: ReceiptKind) -> String {
        format!(
            "{}foco.receipts.{}.{}",
            self.subject_prefix,
            subject_token(account_id),
            kind.as_str()
        )
    }

    /// Which message a receipts subject carries, from its last token.
    pub fn receipt_kind_of(&self, subject: &str) -> Option<ReceiptKind> {
        match subject.rsplit('.').next()? {
            "status" => Some(ReceiptKind::Status),
            "inbound" => Some(ReceiptKind::Inbound),
            _ => None,
        }
    }

    /// The status feed: every status change of every message, kept as history
    /// (not a work queue) so readers can resume from a stream sequence.
    pub fn status_stream(&self) -> String {
        format!("{}FOCO_STATUS", self.stream_prefix)
    }

    /// `foco.status.<account>.<kind>`: a `foco.v1.StatusChange` whose `kind` is
    /// the last token (`sent`, `delivered`, …, `inbound`).
    pub fn status_subject(&self, account_id: &str, kind: &str) -> String {
        format!(
            "{}foco.status.{}.{}",
            self.subject_prefix,
            subject_token(account_id),
            subject_token(kind)
        )
    }

    /// Every change of one account.
    pub fn status_account_filter(&self, account_id: &str) -> String {
        format!(
            "{}foco.status.{}.*",
            self.subject_prefix,
            subject_token(account_id)
        )
    }

    pub fn status_filter(&self) -> String {
        format!("{}foco.status.>", self.subject_prefix)
    }

    /// Durable consumer of control's status-webhook worker on the status feed.
    pub fn webhooks_consumer(&self) -> &'static str {
        "foco-control-webhooks"
    }

    /// Durable consumer of the sender service on the receipts stream.
    pub fn receipts_consumer(&self) -> &'static str {
        "foco-sender-receipts"
    }

    /// Core NATS subject (not a stream) on which control announces configuration
    /// changes, so cached lookups in other services can be dropped at once.
    pub fn config_changed_subject(&self) -> String {
        format!("{}foco.config.changed", self.subject_prefix)
    }

    /// Durable consumer of the rules service on the events stream.
    pub fn rules_consumer(&self) -> &'static str {
        "foco-rules"
    }

    /// Durable consumer of the sender service on the SMS stream.
    pub fn sender_consumer(&self) -> &'static str {
        "foco-sender"
    }

    /// Where replies to `service`'s requests (JetStream API answers, publish
    /// acks, pulled messages) arrive: its own prefix, so its NATS user may
    /// subscribe to its replies and no one else's.
    pub fn inbox_prefix(&self, service: Service) -> String {
        format!("_INBOX.{}{}", self.subject_prefix, service.client_name())
    }
}

/// What a message on FOCO_RECEIPTS is, and so which protobuf type its body has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// `foco.v1.DeliveryReceipt`: a provider's delivery report.
    Status,
    /// `foco.v1.InboundSms`: an SMS a customer sent to the account.
    Inbound,
}

impl ReceiptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Inbound => "inbound",
        }
    }
}

/// Ids are generated by Foco (UUIDs), but a token must never contain the subject
/// separators, whatever reaches this function.
fn subject_token(raw: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| matches!(c, '.' | '*' | '>' | ' ' | '\t' | '\r' | '\n');
    if raw.contains(unsafe_char) {
        Cow::Owned(raw.replace(unsafe_char, "_"))
    } else {
        // Ids are plain tokens: nothing to replace, nothing to copy.
        Cow::Borrowed(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prefix_gives_production_names() {
        let names = BusNames::new("").unwrap();
        assert_eq!(names.events_stream(), "FOCO_EVENTS");
        assert_eq!(names.events_subject("a1", "s1"), "foco.events.a1.s1");
        assert_eq!(names.sms_subject("a1"), "foco.sms.a1");
        assert_eq!(names.sms_filter(), "foco.sms.>");
        assert_eq!(names.status_stream(), "FOCO_STATUS");
        assert_eq!(names.status_subject("a1", "sent"), "foco.status.a1.sent");
        assert_eq!(names.status_account_filter("a1"), "foco.status.a1.*");
    }

    #[test]
    fn prefix_separates_streams_and_subjects() {
        let names = BusNames::new("t-42").unwrap();
        assert_eq!(names.events_stream(), "T_42_FOCO_EVENTS");
        assert_eq!(names.events_filter(), "t-42.foco.events.>");
        assert_eq!(names.config_changed_subject(), "t-42.foco.config.changed");
    }

    #[test]
    fn receipt_subjects_name_their_kind() {
        let names = BusNames::new("t1").unwrap();
        let subject = names.receipts_subject("a1", ReceiptKind::Inbound);
        assert_eq!(subject, "t1.foco.receipts.a1.inbound");
        assert_eq!(names.receipt_kind_of(&subject), Some(ReceiptKind::Inbound));
        let subject = names.receipts_subject("a1", ReceiptKind::Status);
        assert_eq!(names.receipt_kind_of(&subject), Some(ReceiptKind::Status));
        assert_eq!(names.receipt_kind_of("t1.foco.receipts.a1.other"), None);
    }

    #[test]
    fn prefix_with_subject_syntax_is_refused() {
        assert!(BusNames::new("a.b").is_err());
        assert!(BusNames::new("a>").is_err());
    }

    #[test]
    fn subject_tokens_cannot_inject_wildcards() {
        let names = BusNames::new("").unwrap();
        assert_eq!(names.sms_subject("a.*>"), "foco.sms.a___");
        assert_eq!(
            names.events_subject("acc 1", "src\t2"),
            "foco.events.acc_1.src_2"
        );
        assert_eq!(names.events_subject("acc", "src"), "foco.events.acc.src");
    }
}
