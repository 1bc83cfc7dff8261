//! What each service may do on NATS: the subjects it publishes and subscribes
//! to, JetStream API requests and acks included, derived from the same
//! `BusNames` the services use. Everything else is refused by the server once
//! its configuration lists these permissions (`foco-control bus-permissions`
//! prints that configuration). The console does not use NATS.

use std::fmt::Write as _;

use crate::BusNames;

/// A service that connects to NATS, each with its own NATS user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Ingress,
    Rules,
    Sender,
    Control,
}

impl Service {
    pub const ALL: [Self; 4] = [Self::Ingress, Self::Rules, Self::Sender, Self::Control];

    /// The client name NATS monitoring shows, and the service's inbox token.
    pub fn client_name(self) -> &'static str {
        match self {
            Self::Ingress => "foco-ingress",
            Self::Rules => "foco-rules",
            Self::Sender => "foco-sender",
            Self::Control => "foco-control",
        }
    }

    /// The environment variable the printed server configuration reads the
    /// service's public NKey from, e.g. `FOCO_INGRESS_NATS_NKEY`.
    pub fn nkey_variable(self) -> String {
        format!(
            "{}_NATS_NKEY",
            self.client_name().to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// Subjects a NATS user may publish to and subscribe to (NATS wildcards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// JetStream API requests go to `$JS.API.<request>`.
fn api(request: &str) -> String {
    format!("$JS.API.{request}")
}

/// Reading, creating and updating `stream` (what `ensure_streams` does).
fn stream_reconciliation(stream: &str) -> [String; 3] {
    ["INFO", "CREATE", "UPDATE"].map(|verb| api(&format!("STREAM.{verb}.{stream}")))
}

/// Creating, updating and reading the durable pull consumer `consumer` on
/// `stream`, pulling from it and acknowledging what it delivered, and reading
/// its oldest unacknowledged message (the lag metrics). The create request
/// names the consumer and, after it, its filter subject.
fn durable_pull_consumer(stream: &str, consumer: &str) -> [String; 6] {
    [
        api(&format!("STREAM.MSG.GET.{stream}")),
        api(&format!("CONSUMER.CREATE.{stream}.{consumer}")),
        api(&format!("CONSUMER.CREATE.{stream}.{consumer}.>")),
        api(&format!("CONSUMER.INFO.{stream}.{consumer}")),
        api(&format!("CONSUMER.MSG.NEXT.{stream}.{consumer}")),
        format!("$JS.ACK.{stream}.{consumer}.>"),
    ]
}

impl BusNames {
    fn all_streams(&self) -> [String; 4] {
        [
            self.events_stream(),
            self.sms_stream(),
            self.receipts_stream(),
            self.status_stream(),
        ]
    }

    /// What `service` needs on the bus, and nothing more.
    pub fn permissions(&self, service: Service) -> Permissions {
        let mut publish = Vec::new();
        let mut subscribe = vec![format!("{}.>", self.inbox_prefix(service))];
        // Ingress, rules and the sender each reconcile every stream at start.
        let reconcile_all_streams = || {
            self.all_streams()
                .iter()
                .flat_map(|stream| stream_reconciliation(stream))
                .collect::<Vec<_>>()
        };
        match service {
            Service::Ingress => {
                publish.extend([self.events_filter(), self.receipts_filter()]);
                publish.extend(reconcile_all_streams());
                subscribe.push(self.config_changed_subject());
            }
            Service::Rules => {
                publish.extend([self.sms_filter(), self.status_filter()]);
                publish.extend(reconcile_all_streams());
                publish.extend(durable_pull_consumer(
                    &self.events_stream(),
                    self.rules_consumer(),
                ));
                subscribe.push(self.config_changed_subject());
            }
            Service::Sender => {
                // Events: an inbound SMS becomes an event of the account's
                // inbound source.
                publish.extend([
                    self.sms_filter(),
                    self.status_filter(),
                    self.events_filter(),
                ]);
                publish.extend(reconcile_all_streams());
                publish.extend(durable_pull_consumer(
                    &self.sms_stream(),
                    self.sender_consumer(),
                ));
                publish.extend(durable_pull_consumer(
                    &self.receipts_stream(),
                    self.receipts_consumer(),
                ));
                subscribe.push(self.config_changed_subject());
            }
            Service::Control => {
                publish.extend([
                    self.events_filter(),
                    self.sms_filter(),
                    self.status_filter(),
                    self.config_changed_subject(),
                ]);
                // `bus-topology` reads every stream and lists its consumers.
                for stream in self.all_streams() {
                    publish.push(api(&format!("STREAM.INFO.{stream}")));
                    publish.push(api(&format!("CONSUMER.LIST.{stream}")));
                }
                let status = self.status_stream();
                publish.extend(
                    ["CREATE", "UPDATE"].map(|verb| api(&format!("STREAM.{verb}.{status}"))),
                );
                // The webhook worker's durable consumer, and one ordered
                // consumer per `WatchMessages` call: created without a name
                // first, then named by the client when it is recreated, and
                // deleted then.
                publish.push(api(&format!("CONSUMER.CREATE.{status}")));
                for verb in ["CREATE", "INFO", "DELETE", "MSG.NEXT"] {
                    publish.push(api(&format!("CONSUMER.{verb}.{status}.>")));
                }
                publish.push(format!("$JS.ACK.{status}.{}.>", self.webhooks_consumer()));
                // The webhook worker follows endpoint changes made on any replica.
                subscribe.push(self.config_changed_subject());
            }
        }
        Permissions { publish, subscribe }
    }
}

/// One entry of a nats-server `authorization { users = [...] }` list:
/// `identity` (e.g. `nkey: "U…"`, or `user: "a", password: "b"`) and, when
/// given, the permissions; without them the user may do anything.
pub fn server_user(identity: &str, permissions: Option<&Permissions>) -> String {
    let mut entry = format!("    {{\n      {identity}\n");
    if let Some(permissions) = permissions {
        let quoted = |subjects: &[String]| {
            subjects
                .iter()
                .map(|subject| format!("          \"{subject}\""))
                .collect::<Vec<_>>()
                .join(",\n")
        };
        let _ = write!(
            entry,
            "      permissions: {{\n        publish: {{ allow: [\n{}\n        ] }}\n        subscribe: {{ allow: [\n{}\n        ] }}\n      }}\n",
            quoted(&permissions.publish),
            quoted(&permissions.subscribe),
        );
    }
    entry.push_str("    }\n");
    entry
}

/// The `authorization` block listing `users` (from [`server_user`]).
pub fn server_authorization(users: &[String]) -> String {
    format!("authorization {{\n  users = [\n{}  ]\n}}\n", users.concat())
}

/// The server configuration of every service's user: each identified by its
/// public NKey, read by nats-server from the environment variable
/// [`Service::nkey_variable`] names, and allowed what [`BusNames::permissions`]
/// says.
pub fn services_authorization(names: &BusNames) -> String {
    let users: Vec<String> = Service::ALL
        .into_iter()
        .map(|service| {
            let identity = format!(
                "# {}\n      nkey: ${}",
                service.client_name(),
                service.nkey_variable()
            );
            server_user(&identity, Some(&names.permissions(service)))
        })
        .collect();
    server_authorization(&users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_follow_the_prefix() {
        let names = BusNames::new("t1").unwrap();
        let ingress = names.permissions(Service::Ingress);
        assert!(ingress.publish.contains(&"t1.foco.events.>".to_owned()));
        assert!(
            ingress
                .publish
                .contains(&"$JS.API.STREAM.CREATE.T1_FOCO_EVENTS".to_owned())
        );
        assert_eq!(
            ingress.subscribe,
            ["_INBOX.t1.foco-ingress.>", "t1.foco.config.changed"]
        );
        let rules = names.permissions(Service::Rules);
        assert!(
            rules
                .publish
                .contains(&"$JS.API.CONSUMER.MSG.NEXT.T1_FOCO_EVENTS.foco-rules".to_owned())
        );
        assert!(
            rules
                .publish
                .contains(&"$JS.ACK.T1_FOCO_EVENTS.foco-rules.>".to_owned())
        );
    }

    #[test]
    fn no_service_may_delete_a_stream_or_publish_everywhere() {
        let names = BusNames::new("").unwrap();
        for service in Service::ALL {
            let permissions = names.permissions(service);
            for subject in permissions.publish.iter().chain(&permissions.subscribe) {
                assert!(!subject.contains("STREAM.DELETE"), "{service:?}: {subject}");
                assert!(!subject.contains("PURGE"), "{service:?}: {subject}");
                assert_ne!(subject, ">", "{service:?}");
                assert!(!subject.starts_with("$JS.API.>"), "{service:?}: {subject}");
            }
        }
        let ingress = names.permissions(Service::Ingress);
        assert!(!ingress.publish.iter().any(|s| s.starts_with("foco.sms")));
    }

    #[test]
    fn the_production_nats_configuration_is_what_the_command_prints() {
        let committed = include_str!("../../../k8s/nats/cluster/authorization.conf");
        let printed = services_authorization(&BusNames::new("").unwrap());
        assert!(
            committed.ends_with(&printed),
            "k8s/nats/cluster/authorization.conf is stale: replace its block with\n{printed}"
        );
    }

    #[test]
    fn the_server_configuration_names_each_service_by_its_nkey_variable() {
        let names = BusNames::new("").unwrap();
        let printed = services_authorization(&names);
        assert!(printed.starts_with("authorization {\n  users = [\n"));
        for service in Service::ALL {
            assert!(
                printed.contains(&format!("nkey: ${}\n", service.nkey_variable())),
                "{printed}"
            );
        }
        assert!(printed.contains("\"$JS.ACK.FOCO_SMS.foco-sender.>\""));
        assert_eq!(Service::Rules.nkey_variable(), "FOCO_RULES_NATS_NKEY");
    }
}
