//! What an API key may do: its scopes, and the one table that says which scope
//! each RPC needs. [`ControlApi::call`](crate::api) checks it before any handler
//! runs; an RPC missing from the table is refused, and a test compares the table
//! with the services in `proto/`, so a new RPC cannot ship without a scope.
//!
//! Account keys hold some of `send`, `trigger`, `read` and `manage`, for their own
//! account. Service keys belong to no account: they hold the lookups one service
//! needs (`resolve:sources`, `resolve:routes`), across accounts, and nothing else.
//! The admin key holds every scope.

use std::fmt;

/// One scope. The names are the API's and the CLI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send SMS through the API (`SendMessage`, `SendMessages`).
    Send,
    /// Trigger an event as if a source had received it (`TriggerEvent`).
    Trigger,
    /// Read the account's configuration, messages, jobs and reports.
    Read,
    /// Change the account's configuration and keys, and act on its messages.
    Manage,
    /// `ResolveSource` for every account: sources with their signing secrets.
    ResolveSources,
    /// `ResolveRoute` for every account: provider routes with their credentials.
    ResolveRoutes,
}

impl Scope {
    pub const ALL: [Self; 6] = [
        Self::Send,
        Self::Trigger,
        Self::Read,
        Self::Manage,
        Self::ResolveSources,
        Self::ResolveRoutes,
    ];

    /// The scopes an account key may hold.
    pub const ACCOUNT: [Self; 4] = [Self::Send, Self::Trigger, Self::Read, Self::Manage];

    pub fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Trigger => "trigger",
            Self::Read => "read",
            Self::Manage => "manage",
            Self::ResolveSources => "resolve:sources",
            Self::ResolveRoutes => "resolve:routes",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const fn empty() -> Self {
        Self(0)
    }

    pub fn all() -> Self {
        Self::ALL_SCOPES
    }

    const ALL_SCOPES: Self = Self(0b11_1111);

    pub fn account() -> Self {
        Scope::ACCOUNT.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// The names, in [`Scope::ALL`]'s order, as stored and shown.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|scope| scope.name().to_owned()).collect()
    }

    /// Names as stored or requested; `Err` names the first unknown one.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        names
            .iter()
            .map(|name| {
                let name = name.as_ref().trim();
                Scope::parse(name).ok_or_else(|| name.to_owned())
            })
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Self(scopes.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.names().join(","))
    }
}

/// A service that calls control with a key of its own, and the scopes that key
/// holds: the lookups the service makes and nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Sources by webhook token; routes for the provider callbacks' signatures.
    Ingress,
    /// Sources (with their rules) by id.
    Rules,
    /// Provider routes with their credentials.
    Sender,
}

impl Service {
    pub const ALL: [Self; 3] = [Self::Ingress, Self::Rules, Self::Sender];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Rules => "rules",
            Self::Sender => "sender",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|service| service.name() == name)
    }

    pub fn scopes(self) -> Scopes {
        match self {
            Self::Ingress => [Scope::ResolveSources, Scope::ResolveRoutes]
                .into_iter()
                .collect(),
            Self::Rules => [Scope::ResolveSources].into_iter().collect(),
            Self::Sender => [Scope::ResolveRoutes].into_iter().collect(),
        }
    }
}

/// Every RPC of every service control serves (by method name, unique across
/// them) and the scope a key needs to call it.
pub const RPC_SCOPES: &[(&str, Scope)] = &[
    // foco.v1.ControlService
    ("UpsertAccount", Scope::Manage),
    ("GetAccount", Scope::Read),
    ("ListAccounts", Scope::Read),
    ("CreateApiKey", Scope::Manage),
    ("ListApiKeys", Scope::Read),
    ("RevokeApiKey", Scope::Manage),
    ("UpsertSource", Scope::Manage),
    ("GetSource", Scope::Read),
    ("ListSources", Scope::Read),
    ("DeleteSource", Scope::Manage),
    ("UpsertRule", Scope::Manage),
    ("ListRules", Scope::Read),
    ("DeleteRule", Scope::Manage),
    ("UpsertProviderRoute", Scope::Manage),
    ("ListProviderRoutes", Scope::Read),
    ("DeleteProviderRoute", Scope::Manage),
    ("ListMessages", Scope::Read),
    ("ResolveSource", Scope::ResolveSources),
    ("ResolveRoute", Scope::ResolveRoutes),
    // foco.v1.SchedulingService
    ("ListScheduledJobs", Scope::Read),
    ("CancelScheduledJobs", Scope::Manage),
    ("PreviewRules", Scope::Read),
    ("ListEventReports", Scope::Read),
    ("ListEventSamples", Scope::Read),
    // foco.v1.DeliveryService
    ("ListDeadLetters", Scope::Read),
    ("GetDeadLetter", Scope::Read),
    ("RetryDeadLetter", Scope::Manage),
    ("ListOptOuts", Scope::Read),
    ("AddOptOut", Scope::Manage),
    ("RemoveOptOut", Scope::Manage),
    ("ListUnknownJobs", Scope::Read),
    ("ResolveUnknownJob", Scope::Manage),
    ("ResendUnknownJob", Scope::Manage),
    ("GetMessage", Scope::Read),
    ("GetMessageHistory", Scope::Read),
    ("CancelMessage", Scope::Manage),
    // foco.v1.MessagingService
    ("SendMessage", Scope::Send),
    ("SendMessages", Scope::Send),
    ("TriggerEvent", Scope::Trigger),
    ("WatchMessages", Scope::Read),
    ("CreateEndpoint", Scope::Manage),
    ("ListEndpoints", Scope::Read),
    ("DeleteEndpoint", Scope::Manage),
    ("UpsertEndpoint", Scope::Manage),
    ("RotateEndpointSecret", Scope::Manage),
    ("ListEndpointDeliveries", Scope::Read),
    ("ReplayEndpointDelivery", Scope::Manage),
    ("UpsertTemplate", Scope::Manage),
    ("GetTemplate", Scope::Read),
    ("ListTemplates", Scope::Read),
    ("DeleteTemplate", Scope::Manage),
    ("PreviewTemplate", Scope::Read),
];

/// The scope `method` needs; `None` for a method missing from [`RPC_SCOPES`],
/// which is then refused.
pub fn required_scope(method: &str) -> Option<Scope> {
    RPC_SCOPES
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, scope)| *scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
        for service in Service::ALL {
            assert_eq!(Service::parse(service.name()), Some(service));
        }
        assert_eq!(Scopes::all().iter().count(), Scope::ALL.len());
        assert_eq!(
            Scopes::parse(&["read", " send"]).unwrap().to_string(),
            "send,read"
        );
        assert_eq!(Scopes::parse(&["read", "admin"]), Err("admin".to_owned()));
    }

    #[test]
    fn account_keys_and_service_keys_hold_disjoint_scopes() {
        for service in Service::ALL {
            let scopes = service.scopes();
            assert!(!scopes.is_empty());
            assert!(
                scopes
                    .iter()
                    .all(|scope| !Scopes::account().contains(scope))
            );
        }
    }

    #[test]
    fn subsets() {
        let read: Scopes = [Scope::Read].into_iter().collect();
        assert!(read.is_subset_of(Scopes::account()));
        assert!(!Scopes::account().is_subset_of(read));
        assert!(Scopes::empty().is_subset_of(read));
    }
}
