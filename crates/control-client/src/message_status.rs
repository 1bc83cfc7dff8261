//! A message's status as words: how control's messages table and
//! `GetMessageHistory` spell it, for everything that shows `ListMessages`
//! results beside histories (the CLI's tables, the console's pages).

use foco_proto::v1::MessageStatus;

/// `MessageStatus` (as its wire `i32`) in control's spelling; "unspecified"
/// for values this build does not know.
pub fn message_status_text(status: i32) -> &'static str {
    match MessageStatus::try_from(status) {
        Ok(MessageStatus::Queued) => "queued",
        Ok(MessageStatus::Sending) => "sending",
        Ok(MessageStatus::Sent) => "sent",
        Ok(MessageStatus::Failed) => "failed",
        Ok(MessageStatus::Unknown) => "unknown",
        Ok(MessageStatus::Delivered) => "delivered",
        Ok(MessageStatus::Undelivered) => "undelivered",
        Ok(MessageStatus::Cancelled) => "cancelled",
        Ok(MessageStatus::OptedOut) => "opted-out",
        Ok(MessageStatus::Expired) => "expired",
        Ok(MessageStatus::Unspecified) | Err(_) => "unspecified",
    }
}
