//! Foco in-process, for tests: `TestControl` (the control API over a fresh database
//! and bus prefix) and `TestSystem` (control, ingress, rules and sender, each a
//! real `App` on port-0 listeners, over real NATS and Postgres, delivering to a
//! `FakeProvider`). Only the SMS provider is fake.
//!
//! Test-only: production code never depends on this crate.

mod control;
mod running;
#[cfg(feature = "system")]
mod system;

pub use control::{
    ADMIN_KEY, ENCRYPTION_KEY, TestControl, create_test_account, test_webhook_settings,
};
pub use running::{Crashes, Running, assert_no_crash};
#[cfg(feature = "system")]
pub use system::{ACCOUNT, SystemOptions, TestSystem};

/// How a service of a test reaches `bus`: its server and prefix, as `auth`,
/// with `streams`.
pub fn bus_config(
    bus: &foco_testkit::TestBus,
    auth: foco_bus::NatsAuth,
    streams: foco_bus::StreamSettings,
) -> foco_bus::BusConfig {
    foco_bus::BusConfig {
        url: bus.nats_url.clone(),
        auth,
        names: foco_bus::BusNames::new(&bus.prefix).expect("a test prefix is a valid bus prefix"),
        streams,
    }
}

/// A service's connection to `control` with `api_key`.
pub fn control_config(
    control: &TestControl,
    api_key: secrecy::SecretString,
) -> foco_control_client::ControlConfig {
    foco_control_client::ControlConfig {
        url: control.grpc_url.clone(),
        api_key,
        ca_file: None,
    }
}
