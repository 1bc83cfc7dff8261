//! End to end through ingress, rules and sender (and control for configuration),
//! over the real NATS JetStream and PostgreSQL, delivering to a fake provider.

mod api;
mod follow_ups;
mod idempotency;
mod malformed;
mod nats_users;
mod receipts;
mod scenarios;
mod status_feed;
mod support;
mod two_way;
mod validity;
