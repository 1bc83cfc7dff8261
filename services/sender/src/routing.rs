//! Where a job goes. The job names a provider route (empty: the account's
//! default), resolved through control and cached. A route is an ordered list of
//! providers: the route itself, then the routes named in its `failover` setting,
//! each optionally limited to destinations by `country_prefixes`. The handler
//! tries them in order, skipping routes whose circuit breaker is open, and moves
//! on only after a definite failure (never after an unknown outcome).
//!
//! Route settings read here (besides each provider's own): `failover` (comma-
//! separated route names), `country_prefixes` (comma-separated E.164 prefixes
//! such as `+52,+1`), `rate_limit` (messages per second across all replicas),
//! `breaker_threshold` [5], `breaker_cooldown` [30s], `quiet_hours` (e.g.
//! `21:00-08:00` or `off`), `help_text` (the answer to an inbound HELP).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use foco_control_client::{ConfigCache, LookupError};
use foco_proto::v1::ResolvedRoute;
use foco_providers::keys;

use crate::breaker::BreakerSettings;
use crate::metrics::{Metrics, RouteCalls};
use crate::providers::{Provider, Providers, RouteConfigError};
use crate::quiet::QuietHours;

pub trait RouteSource: Send + Sync {
    /// `Ok(None)`: the account has no such route. `Err`: the lookup could not be
    /// answered now (retry later, never "not found").
    fn route(
        &self,
        account_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<ResolvedRoute>>, LookupError>> + Send;
}

impl RouteSource for ConfigCache {
    async fn route(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Arc<ResolvedRoute>>, LookupError> {
        ConfigCache::route(self, account_id, name).await
    }
}

impl<T: RouteSource> RouteSource for Arc<T> {
    async fn route(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Arc<ResolvedRoute>>, LookupError> {
        self.as_ref().route(account_id, name).await
    }
}

/// The account's default country for reading local numbers (empty when unknown).
pub fn default_country(route: &ResolvedRoute) -> &str {
    route
        .account
        .as_ref()
        .map_or("", |account| account.default_country.as_str())
}

/// The route's name as recorded on the message.
pub fn route_name<'a>(route: &'a ResolvedRoute, requested: &'a str) -> &'a str {
    route
        .route
        .as_ref()
        .map(|route| route.name.as_str())
        .filter(|name| !name.is_empty())
        .unwrap_or(requested)
}

/// One route, read once per version of its configuration.
pub struct RouteInfo {
    pub name: String,
    /// `<account id>/<route name>`: the key of rate limits, pauses and breakers.
    pub key: Arc<str>,
    pub provider: Result<Arc<Provider>, RouteConfigError>,
    pub rate_limit: Option<u32>,
    pub failover: Vec<String>,
    pub country_prefixes: Vec<String>,
    pub breaker: BreakerSettings,
    /// `Some` when the route sets its own quiet hours (`Some(None)`: none).
    pub quiet_hours: Option<Option<QuietHours>>,
    pub help_text: Option<String>,
    pub account_timezone: String,
    /// Latency and outcome of calls through this route (`None` when its
    /// configuration is unusable: nothing is called through it).
    pub calls: Option<RouteCalls>,
    /// Credential values, so that a provider echoing one in an error body cannot
    /// carry it into `messages.error`, logs or API answers.
    secrets: Vec<String>,
}

impl std::fmt::Debug for RouteInfo {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RouteInfo")
            .field("key", &self.key)
            .field("provider", &self.provider)
            .field("failover", &self.failover)
            .field("country_prefixes", &self.country_prefixes)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl RouteInfo {
    /// `text` with every credential value of the route replaced.
    pub fn scrub(&self, text: String) -> String {
        let mut text = text;
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }

    /// Whether this route sends to `recipient` (E.164).
    pub fn serves(&self, recipient: &str) -> bool {
        self.country_prefixes.is_empty()
            || self
                .country_prefixes
                .iter()
                .any(|prefix| recipient.starts_with(prefix.as_str()))
    }

    fn read(route: &ResolvedRoute, providers: &Providers, metrics: &Metrics) -> Self {
        let empty = HashMap::new();
        let (account_id, name, settings) = match &route.route {
            Some(inner) => (
                inner.account_id.as_str(),
                inner.name.as_str(),
                &inner.settings,
            ),
            None => ("", "", &empty),
        };
        let get = |key: &str| {
            settings
                .get(key)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
        };
        let list = |key: &str| -> Vec<String> {
            get(key)
                .map(|value| {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut provider = providers.for_route(route).map(Arc::new);
        let mut invalid = |setting: &'static str| {
            if provider.is_ok() {
                provider = Err(RouteConfigError::InvalidSetting(setting));
            }
        };
        let rate_limit = get(keys::RATE_LIMIT).and_then(|value| {
            let parsed = value.parse::<u32>().ok();
            if parsed.is_none() {
                invalid(keys::RATE_LIMIT);
            }
            parsed
        });
        let mut breaker = BreakerSettings::default();
        if let Some(value) = get(keys::BREAKER_THRESHOLD) {
            match value.parse() {
                Ok(threshold) => breaker.threshold = threshold,
                Err(_) => invalid(keys::BREAKER_THRESHOLD),
            }
        }
        if let Some(value) = get(keys::BREAKER_COOLDOWN) {
            match humantime::parse_duration(value) {
                Ok(cooldown) => breaker.cooldown = cooldown,
                Err(_) => invalid(keys::BREAKER_COOLDOWN),
            }
        }
        let quiet_hours = match settings.get(keys::QUIET_HOURS) {
            None => None,
            Some(value) => match QuietHours::parse(value) {
                Ok(window) => Some(window),
                Err(_) => {
                    invalid(keys::QUIET_HOURS);
                    None
                }
            },
        };
        let calls = provider
            .as_ref()
            .ok()
            .map(|provider| metrics.route_calls(provider.kind(), name));
        Self {
            name: name.to_owned(),
            key: Arc::from(format!("{account_id}/{name}")),
            provider,
            calls,
            rate_limit,
            failover: list(keys::FAILOVER),
            country_prefixes: list(keys::COUNTRY_PREFIXES),
            breaker,
            quiet_hours,
            help_text: get(keys::HELP_TEXT).map(str::to_owned),
            account_timezone: route
                .account
                .as_ref()
                .map(|account| account.timezone.clone())
                .unwrap_or_default(),
            // Short values (a region code) would redact ordinary words.
            secrets: route
                .credentials
                .values()
                .map(|value| value.trim().to_owned())
                .filter(|value| value.len() >= 6)
                .collect(),
        }
    }
}

type InfoCache = HashMap<(String, String), (Arc<ResolvedRoute>, Arc<RouteInfo>)>;

/// Route information, rebuilt only when control hands out a new version of a
/// route (the config cache keeps the same `Arc` until the route changes).
#[derive(Clone)]
pub struct Routes {
    providers: Providers,
    metrics: Metrics,
    cache: Arc<Mutex<InfoCache>>,
}

impl Routes {
    pub fn new(providers: Providers, metrics: Metrics) -> Self {
        Self {
            providers,
            metrics,
            cache: Arc::default(),
        }
    }

    pub fn info(&self, route: &Arc<ResolvedRoute>) -> Arc<RouteInfo> {
        let key = match &route.route {
            Some(inner) => (inner.account_id.clone(), inner.name.clone()),
            None => (String::new(), String::new()),
        };
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if let Some((seen, info)) = cache.get(&key)
                && Arc::ptr_eq(seen, route)
            {
                return info.clone();
            }
        }
        let info = Arc::new(RouteInfo::read(route, &self.providers, &self.metrics));
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.insert(key, (route.clone(), info.clone()));
        info
    }

    /// The providers to try for `recipient`, in order: `primary` and its failover
    /// routes that serve the recipient's country. Unknown failover names are
    /// skipped (and logged): a typo must not stop the primary from sending.
    pub async fn chain<R: RouteSource>(
        &self,
        source: &R,
        account_id: &str,
        primary: &Arc<ResolvedRoute>,
        recipient: &str,
    ) -> Result<Vec<Arc<RouteInfo>>, LookupError> {
        let first = self.info(primary);
        let mut chain = Vec::with_capacity(1 + first.failover.len());
        for name in &first.failover {
            if name == &first.name {
                continue;
            }
            match source.route(account_id, name).await? {
                Some(route) => chain.push(self.info(&route)),
                None => {
                    tracing::warn!(route = %first.name, failover = %name, "failover route does not exist; skipped")
                }
            }
        }
        chain.insert(0, first);
        chain.retain(|info| info.serves(recipient));
        Ok(chain)
    }

    /// One route by name (for a job locked to the route it was last sent through).
    pub async fn named<R: RouteSource>(
        &self,
        source: &R,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Arc<RouteInfo>>, LookupError> {
        Ok(source
            .route(account_id, name)
            .await?
            .map(|route| self.info(&route)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use foco_proto::v1::ProviderRoute;

    use super::*;

    #[test]
    fn credentials_echoed_by_a_provider_are_redacted() {
        let route = ResolvedRoute {
            route: Some(ProviderRoute {
                name: "main".to_owned(),
                kind: "console".to_owned(),
                ..Default::default()
            }),
            account: None,
            credentials: HashMap::from([
                ("api_key".to_owned(), "sk_live_0123456789".to_owned()),
                ("region".to_owned(), "mx".to_owned()),
            ]),
            inbound_source_id: String::new(),
        };
        let providers = Providers::new(std::time::Duration::from_secs(1), true, None).unwrap();
        let info = RouteInfo::read(&route, &providers, &Metrics::unregistered());
        assert_eq!(
            info.scrub("HTTP 401: invalid key sk_live_0123456789 for mx".to_owned()),
            "HTTP 401: invalid key [redacted] for mx"
        );
        assert!(
            !format!("{info:?}").contains("sk_live"),
            "Debug must not show secrets"
        );
    }
}
