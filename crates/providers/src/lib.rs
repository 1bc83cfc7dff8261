//! The catalog of SMS provider kinds: for each kind its id and display name,
//! its settings and credentials (which are secret, which are required, what is
//! checked, their defaults), whether it is idempotent, whether it sends
//! delivery receipts and inbound messages, and the paths of its callbacks.
//! Control validates provider routes with it, the CLI reads and explains
//! `providers:` entries with it, the sender picks an adapter and its defaults
//! with it, ingress serves callbacks at the paths it names, and the console
//! shows kinds by their names. Nobody else spells a kind or a key.
//!
//! It is data and pure checks only: no I/O, no HTTP, no adapter code. How a
//! kind sends (the sender's `providers/`) and how its callbacks are read and
//! verified (ingress's `providers/<kind>/`) stay with the services that do it.
//!
//! # Adding a provider kind
//!
//! 1. Here, in `catalog.rs`: a line in `kinds!` and a `ProviderSpec` entry
//!    (keys with their storage, checks and defaults; idempotency; callbacks).
//!    New key names go in `keys.rs`. Control and the CLI need nothing else:
//!    routes of the new kind are validated and `foco apply` reads its keys.
//! 2. The sender: an adapter in `services/sender/src/providers/<kind>.rs`
//!    (`new` from the route's settings and credentials, `send` mapping the
//!    answer to a `ProviderOutcome`), and its variant in `Provider` and arm in
//!    `Providers::for_route` in `providers/mod.rs` (the compiler asks for it).
//! 3. If the kind has callbacks: a folder `services/ingress/src/providers/<kind>/`
//!    (`route.rs`: handlers annotated for the OpenAPI document at the catalog's
//!    paths and the table of its endpoints; `parse.rs`: the provider's fields to
//!    receipts and inbound messages; `signature.rs`: its verification), and its
//!    arm in `endpoints` in `providers/mod.rs` (the compiler asks for it).
//!    Regenerate `services/ingress/openapi.json`
//!    (`FOCO_UPDATE_OPENAPI=1 cargo test -p foco-ingress openapi`).
//! 4. Document it in `docs/providers.md`.

mod catalog;
pub mod keys;
mod spec;
pub mod validate;

use std::fmt;
use std::str::FromStr;

pub use catalog::{ProviderKind, VONAGE_SIGNATURE_METHODS};
pub use spec::{Callback, CallbackMethod, Carries, Check, Idempotency, Key, ProviderSpec, Storage};

/// Where every provider callback lives.
pub const CALLBACK_PATH_PREFIX: &str = "/v1/providers";

impl ProviderKind {
    /// The kind a route's `kind` names, spelled exactly.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.id() == id)
    }

    /// The route's `kind` (`twilio`), also a metrics label.
    pub fn id(self) -> &'static str {
        self.spec().id
    }

    /// How people write it (`Twilio`).
    pub fn display_name(self) -> &'static str {
        self.spec().display_name
    }

    /// Every callback path of the kind with the methods it accepts: for each
    /// callback, the named route's path first, then the default route's.
    pub fn callback_paths(self) -> impl Iterator<Item = (String, &'static [CallbackMethod])> {
        self.spec().callbacks.iter().flat_map(move |callback| {
            [RouteInPath::Named, RouteInPath::Default]
                .map(|route| (callback_path(self, callback.name, route), callback.methods))
        })
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.id())
    }
}

/// A kind id that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a provider kind")]
pub struct UnknownKind(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownKind;

    fn from_str(id: &str) -> Result<Self, UnknownKind> {
        Self::from_id(id).ok_or_else(|| UnknownKind(id.to_owned()))
    }
}

/// Whether a callback URL names the route or means the account's default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteInPath {
    /// `/v1/providers/<kind>/{account_id}/{route}/<callback>`
    Named,
    /// `/v1/providers/<kind>/{account_id}/<callback>`
    Default,
}

/// The path (with `{account_id}` and `{route}` parameters, as the router and
/// the OpenAPI document write them) of one of a kind's callbacks.
pub fn callback_path(kind: ProviderKind, callback: &str, route: RouteInPath) -> String {
    let id = kind.id();
    match route {
        RouteInPath::Named => {
            format!("{CALLBACK_PATH_PREFIX}/{id}/{{account_id}}/{{route}}/{callback}")
        }
        RouteInPath::Default => format!("{CALLBACK_PATH_PREFIX}/{id}/{{account_id}}/{callback}"),
    }
}

/// Every key a `providers:` entry may hold for some kind: the kinds' own keys
/// and refused settings (each once, in catalog order) and the route settings.
pub fn all_key_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    let own = ProviderKind::ALL.iter().flat_map(|kind| {
        let spec = kind.spec();
        let keys = spec.keys.iter().map(|key| key.name);
        keys.chain(spec.refused_settings.iter().map(|(name, _)| *name))
    });
    for name in own.chain(keys::ROUTE_SETTINGS.iter().copied()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let ids: HashSet<&str> = ProviderKind::IDS.iter().copied().collect();
        assert_eq!(ids.len(), ProviderKind::ALL.len());
        for kind in ProviderKind::ALL {
            assert_eq!(ProviderKind::from_id(kind.id()), Some(*kind));
            assert_eq!(kind.to_string().parse::<ProviderKind>(), Ok(*kind));
            // Ids are route kinds, metrics labels and path segments.
            assert!(kind.id().bytes().all(|byte| byte.is_ascii_lowercase()));
        }
        assert_eq!(
            "pigeon".parse::<ProviderKind>(),
            Err(UnknownKind("pigeon".to_owned()))
        );
    }

    #[test]
    fn keys_are_unique_per_kind_and_not_route_settings() {
        for kind in ProviderKind::ALL {
            let spec = kind.spec();
            let names: HashSet<&str> = spec.keys.iter().map(|key| key.name).collect();
            assert_eq!(names.len(), spec.keys.len(), "{kind}");
            for name in &names {
                assert!(!keys::ROUTE_SETTINGS.contains(name), "{kind}: {name}");
            }
            for key in spec.callback_credentials() {
                assert_eq!(key.storage, Storage::Credential, "{kind}: {}", key.name);
            }
            if let Idempotency::WhenSetting(setting) = spec.idempotency {
                assert!(spec.key(setting).is_some(), "{kind}: {setting}");
            }
            for setting in spec.sender_settings {
                let key = spec.key(setting);
                assert!(
                    key.is_some_and(|key| key.storage == Storage::Setting && !key.required),
                    "{kind}: a sender setting is one of its optional settings: {setting}"
                );
            }
        }
    }

    #[test]
    fn what_each_kind_offers() {
        let offers = |kind: ProviderKind| {
            let spec = kind.spec();
            (spec.has_receipts(), spec.has_inbound(), spec.idempotency)
        };
        assert_eq!(
            offers(ProviderKind::Twilio),
            (true, true, Idempotency::Never)
        );
        assert_eq!(
            offers(ProviderKind::Telnyx),
            (true, true, Idempotency::Always)
        );
        assert_eq!(
            offers(ProviderKind::SmsMasivos),
            (false, false, Idempotency::Never)
        );
        assert_eq!(
            offers(ProviderKind::Http),
            (false, false, Idempotency::WhenSetting("idempotent"))
        );
        assert_eq!(
            ProviderKind::Vonage.spec().default_of(keys::BASE_URL),
            Some("https://rest.nexmo.com")
        );
        assert_eq!(
            ProviderKind::Infobip.spec().default_of(keys::BASE_URL),
            None
        );
        assert_eq!(
            ProviderKind::Twilio.spec().storage_of(keys::AUTH_TOKEN),
            Storage::Credential
        );
        assert_eq!(
            ProviderKind::Twilio.spec().storage_of("rate_limit"),
            Storage::Setting
        );
    }

    #[test]
    fn callback_paths_name_the_kind_account_and_route() {
        let paths: Vec<(String, &[CallbackMethod])> =
            ProviderKind::Vonage.callback_paths().collect();
        assert_eq!(
            paths
                .iter()
                .map(|(path, _)| path.as_str())
                .collect::<Vec<_>>(),
            [
                "/v1/providers/vonage/{account_id}/{route}/status",
                "/v1/providers/vonage/{account_id}/status",
                "/v1/providers/vonage/{account_id}/{route}/inbound",
                "/v1/providers/vonage/{account_id}/inbound",
            ]
        );
        assert!(
            paths
                .iter()
                .all(|(_, methods)| *methods == [CallbackMethod::Get, CallbackMethod::Post])
        );
        assert_eq!(ProviderKind::Telnyx.callback_paths().count(), 2);
        assert_eq!(ProviderKind::Console.callback_paths().count(), 0);
    }

    #[test]
    fn every_key_name_is_listed_once() {
        let names = all_key_names();
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
        for expected in ["url", "account_sid", "public_key", "path", "help_text"] {
            assert!(names.contains(&expected), "{expected}");
        }
    }
}
