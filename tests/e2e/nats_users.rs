//! Each service on its own NATS user, allowed only what `foco_bus` lists for
//! it: a private nats-server configured with the block `foco-control
//! bus-permissions` prints (public NKeys in place of its variables), the four
//! services connecting with their NKey seed files, a webhook through the whole
//! pipeline, and each user refused what is not its own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use foco_bus::{BusNames, NatsAuth, NatsCredentials, Service};
use foco_harness::{SystemOptions, TestSystem};
use foco_testkit::{PrivateNats, TestBus, wait_for};

use crate::status_feed::{kind_and_message, next_update, watch};
use crate::support::{WAIT, configure_shop, post_shopify_order};

/// The test's own user, with every permission, for clients that present no
/// credentials (the server's readiness probe, `TestBus`'s clean-up).
const OBSERVER: &str = "observer";

struct LockedDownNats {
    nats: PrivateNats,
    names: BusNames,
    prefix: String,
    seeds: BTreeMap<Service, String>,
    auth: BTreeMap<Service, NatsAuth>,
    _seed_files: tempfile::TempDir,
}

impl LockedDownNats {
    /// A server whose users are the services', each with its own NKey and the
    /// permissions `foco_bus` gives it under a fresh bus prefix.
    async fn start() -> Self {
        let prefix = format!("t{}", foco_testkit::random_token(10));
        let names = BusNames::new(&prefix).expect("prefix");
        let seed_files = tempfile::tempdir().expect("seed files");
        let mut seeds = BTreeMap::new();
        let mut auth = BTreeMap::new();
        let mut users = Vec::new();
        for service in Service::ALL {
            let key_pair = nkeys::KeyPair::new_user();
            let seed = key_pair.seed().expect("seed");
            let path = seed_files
                .path()
                .join(format!("{}.nk", service.client_name()));
            std::fs::write(&path, format!("{seed}\n")).expect("write seed");
            auth.insert(
                service,
                NatsAuth {
                    credentials: NatsCredentials::nkey_seed_file(&path).expect("seed file"),
                    ca_file: None,
                },
            );
            seeds.insert(service, seed);
            users.push(foco_bus::server_user(
                &format!("nkey: \"{}\"", key_pair.public_key()),
                Some(&names.permissions(service)),
            ));
        }
        users.push(foco_bus::server_user(
            &format!("user: \"{OBSERVER}\", password: \"{OBSERVER}\""),
            None,
        ));
        let config = format!(
            "{}no_auth_user: \"{OBSERVER}\"\n",
            foco_bus::server_authorization(&users)
        );
        let nats = PrivateNats::start_with_config(&config).await;
        Self {
            nats,
            names,
            prefix,
            seeds,
            auth,
            _seed_files: seed_files,
        }
    }

    fn bus(&self) -> TestBus {
        TestBus {
            prefix: self.prefix.clone(),
            nats_url: self.nats.url(),
        }
    }

    /// A client of `service`'s user that records the server's errors.
    async fn client_of(&self, service: Service) -> (async_nats::Client, ServerErrors) {
        let errors = ServerErrors::default();
        let recorded = errors.clone();
        let client = async_nats::ConnectOptions::new()
            .nkey(self.seeds[&service].clone())
            .custom_inbox_prefix(self.names.inbox_prefix(service))
            .event_callback(move |event| {
                let recorded = recorded.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        recorded.0.lock().unwrap().push(error.to_string());
                    }
                }
            })
            .connect(self.nats.url())
            .await
            .expect("connect as the service's user");
        (client, errors)
    }
}

#[derive(Clone, Default)]
struct ServerErrors(Arc<Mutex<Vec<String>>>);

impl ServerErrors {
    /// Waits for the server to refuse `what` ("publish", "subscription") on
    /// `subject`: its "Permissions Violation" error names both.
    async fn wait_for_refusal(&self, what: &str, subject: &str) {
        let violation = format!("permissions violation for {what}");
        wait_for(&format!("{violation} to {subject}"), WAIT, || async {
            let errors = self.0.lock().unwrap();
            errors
                .iter()
                .any(|error| error.to_lowercase().contains(&violation) && error.contains(subject))
                .then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn each_service_works_as_its_own_nats_user_and_is_refused_the_rest() {
    let nats = LockedDownNats::start().await;
    let options = SystemOptions {
        nats_auth: nats.auth.clone(),
        ..SystemOptions::default()
    };
    let system = TestSystem::start_on(nats.bus(), options).await;

    // Control reads the status feed; ingress publishes the event; rules
    // consumes it and publishes the job; the sender consumes the job and
    // publishes its status change.
    let source = configure_shop(&system).await;
    let mut updates = watch(&system, 0).await;
    let posted = post_shopify_order(&system, &source, "order-nats-users-1").await;
    assert_eq!(posted.status, 202, "{}", posted.json);
    let requests = system.provider.wait_for_requests(1, WAIT).await;
    assert_eq!(requests[0].json()["to"], "+525512345678");
    let sent = next_update(&mut updates).await;
    assert_eq!(kind_and_message(&sent).0, "sent");

    let names = &nats.names;
    let refusals = [
        (Service::Ingress, "publish", names.sms_subject("a1")),
        (
            Service::Rules,
            "publish",
            format!("$JS.API.STREAM.DELETE.{}", names.events_stream()),
        ),
        (Service::Sender, "publish", names.config_changed_subject()),
        (
            Service::Control,
            "publish",
            format!(
                "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
                names.events_stream(),
                names.rules_consumer()
            ),
        ),
        (Service::Ingress, "subscription", "_INBOX.>".to_owned()),
    ];
    for (service, what, subject) in refusals {
        let (client, errors) = nats.client_of(service).await;
        let _subscription = if what == "subscription" {
            Some(client.subscribe(subject.clone()).await.expect("subscribe"))
        } else {
            client
                .publish(subject.clone(), "{}".into())
                .await
                .expect("publish");
            None
        };
        client.flush().await.expect("flush");
        errors.wait_for_refusal(what, &subject).await;
    }

    // The refused deletion did nothing.
    let observer = async_nats::connect(nats.nats.url())
        .await
        .expect("observer");
    async_nats::jetstream::new(observer)
        .get_stream(names.events_stream())
        .await
        .expect("FOCO_EVENTS is still there");
    system.stop().await;
}
