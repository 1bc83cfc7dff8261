//! Where a job goes: the provider route named by the job (empty: the account's
//! default), resolved through control and cached. Behind a small trait so that the
//! job handler can be tested with fixed routes.

use std::future::Future;
use std::sync::Arc;

use foco_control_client::{ConfigCache, LookupError};
use foco_proto::v1::ResolvedRoute;

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

impl<T: RouteSource> RouteSource for Arc<T> {
    async fn route(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Arc<ResolvedRoute>>, LookupError> {
        self.as_ref().route(account_id, name).await
    }
}
