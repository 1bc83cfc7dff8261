//! Foco in-process, for tests: `TestControl` (the control API over a fresh database
//! and bus prefix) and `TestSystem` (control, ingress, rules and sender, each a
//! real `App` on port-0 listeners, over real NATS and Postgres, delivering to a
//! `FakeProvider`). Only the SMS provider is fake.
//!
//! Test-only: production code never depends on this crate.

mod control;
#[cfg(feature = "system")]
mod system;

pub use control::{
    ADMIN_KEY, ENCRYPTION_KEY, TestControl, create_test_account, test_webhook_settings,
};
#[cfg(feature = "system")]
pub use system::{ACCOUNT, SystemOptions, TestSystem};
