//! Client of the Foco control API for the other services and the CLI: an
//! authenticated gRPC channel, and cached configuration lookups that are dropped
//! as soon as control announces a change on NATS (with a TTL as the backstop for a
//! missed announcement).
//!
//! It holds no configuration of its own: control is the only source of truth.

use std::sync::Arc;
use std::time::Duration;

use foco_proto::v1::control_service_client::ControlServiceClient;
use foco_proto::v1::delivery_service_client::DeliveryServiceClient;
use foco_proto::v1::scheduling_service_client::SchedulingServiceClient;
use foco_proto::v1::{ResolveRouteRequest, ResolveSourceRequest, ResolvedRoute, ResolvedSource};
use futures::StreamExt;
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum ControlClientError {
    #[error("invalid control URL {url:?}")]
    InvalidUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the API key contains characters not allowed in a header")]
    InvalidApiKey,
}

/// A lookup that could not be answered (control unreachable or failing). Callers
/// treat it as transient: retry later, never as "not found".
#[derive(Debug, Clone, thiserror::Error)]
#[error("control lookup failed: {0}")]
pub struct LookupError(pub tonic::Status);

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct BearerAuth {
    header: MetadataValue<Ascii>,
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.header.clone());
        Ok(request)
    }
}

pub type ControlApi = ControlServiceClient<InterceptedService<Channel, BearerAuth>>;

/// The scheduling API (delayed jobs, previews, event reports), served beside
/// `ControlService` on the same port with the same keys.
pub type SchedulingApi = SchedulingServiceClient<InterceptedService<Channel, BearerAuth>>;

/// Connects lazily: the first call dials, and a control restart is survived.
pub fn connect(url: &str, api_key: &SecretString) -> Result<ControlApi, ControlClientError> {
    let (channel, auth) = authenticated_channel(url, api_key)?;
    Ok(ControlServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE))
}

/// Like [`connect`], for `SchedulingService`.
pub fn connect_scheduling(
    url: &str,
    api_key: &SecretString,
) -> Result<SchedulingApi, ControlClientError> {
    let (channel, auth) = authenticated_channel(url, api_key)?;
    Ok(SchedulingServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE))
}

/// The delivery API (dead letters, opt-outs, unknown jobs, message histories),
/// served beside `ControlService` on the same port with the same keys.
pub type DeliveryApi = DeliveryServiceClient<InterceptedService<Channel, BearerAuth>>;

/// Like [`connect`], for `DeliveryService`.
pub fn connect_delivery(
    url: &str,
    api_key: &SecretString,
) -> Result<DeliveryApi, ControlClientError> {
    let (channel, auth) = authenticated_channel(url, api_key)?;
    Ok(DeliveryServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE))
}

const MAX_DECODING_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// One place for the endpoint settings and the bearer header, so every service
/// client of control dials and authenticates the same way.
fn authenticated_channel(
    url: &str,
    api_key: &SecretString,
) -> Result<(Channel, BearerAuth), ControlClientError> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|source| ControlClientError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    let channel = endpoint.connect_lazy();
    let header = format!("Bearer {}", api_key.expose_secret())
        .parse()
        .map_err(|_| ControlClientError::InvalidApiKey)?;
    Ok((channel, BearerAuth { header }))
}

/// Cached, coalesced lookups of source and route configuration.
#[derive(Clone)]
pub struct ConfigCache {
    api: ControlApi,
    sources_by_token: Cache<String, Option<Arc<ResolvedSource>>>,
    sources_by_id: Cache<String, Option<Arc<ResolvedSource>>>,
    routes: Cache<(String, String), Option<Arc<ResolvedRoute>>>,
}

impl ConfigCache {
    /// `ttl` bounds how stale an entry may be if a change announcement is missed.
    pub fn new(api: ControlApi, ttl: Duration) -> Self {
        let build = || {
            Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build()
        };
        Self {
            api,
            sources_by_token: build(),
            sources_by_id: build(),
            routes: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    pub fn api(&self) -> ControlApi {
        self.api.clone()
    }

    /// The source a webhook token belongs to, with its secrets and rules; `None`
    /// when no source has that token (also cached, so floods of bad tokens stay
    /// cheap).
    ///
    /// Lookups are on every webhook and every SMS job: a hit is answered without
    /// building a request, and the miss path (a gRPC call, whose future is
    /// kilobytes) is boxed so that it does not enlarge every caller's future.
    pub async fn source_by_token(
        &self,
        token: &str,
    ) -> Result<Option<Arc<ResolvedSource>>, LookupError> {
        if let Some(hit) = self.sources_by_token.get(token).await {
            return Ok(hit);
        }
        let request = ResolveSourceRequest {
            token: token.to_owned(),
            source_id: String::new(),
        };
        Box::pin(
            self.sources_by_token
                .try_get_with(token.to_owned(), resolve_source(self.api.clone(), request)),
        )
        .await
        .map_err(|error| (*error).clone())
    }

    pub async fn source_by_id(
        &self,
        source_id: &str,
    ) -> Result<Option<Arc<ResolvedSource>>, LookupError> {
        if let Some(hit) = self.sources_by_id.get(source_id).await {
            return Ok(hit);
        }
        let request = ResolveSourceRequest {
            token: String::new(),
            source_id: source_id.to_owned(),
        };
        Box::pin(self.sources_by_id.try_get_with(
            source_id.to_owned(),
            resolve_source(self.api.clone(), request),
        ))
        .await
        .map_err(|error| (*error).clone())
    }

    /// A provider route with its credentials; an empty `name` is the account's
    /// default route.
    pub async fn route(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Arc<ResolvedRoute>>, LookupError> {
        let key = (account_id.to_owned(), name.to_owned());
        if let Some(hit) = self.routes.get(&key).await {
            return Ok(hit);
        }
        let request = ResolveRouteRequest {
            account_id: account_id.to_owned(),
            name: name.to_owned(),
        };
        Box::pin(
            self.routes
                .try_get_with(key, resolve_route(self.api.clone(), request)),
        )
        .await
        .map_err(|error| (*error).clone())
    }

    pub fn invalidate_all(&self) {
        self.sources_by_token.invalidate_all();
        self.sources_by_id.invalidate_all();
        self.routes.invalidate_all();
    }

    /// Subscribes to control's change announcements and drops every cached entry
    /// on each one. Returns once subscribed, so no change after this call is missed.
    pub async fn watch_changes(
        &self,
        nats: &async_nats::Client,
        subject: String,
        shutdown: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
        let mut subscription = nats.subscribe(subject).await?;
        let cache = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    message = subscription.next() => match message {
                        Some(_) => {
                            tracing::debug!("configuration changed, dropping cached lookups");
                            cache.invalidate_all();
                        }
                        None => break,
                    },
                }
            }
        }))
    }
}

async fn resolve_route(
    mut api: ControlApi,
    request: ResolveRouteRequest,
) -> Result<Option<Arc<ResolvedRoute>>, LookupError> {
    match api.resolve_route(request).await {
        Ok(response) => Ok(Some(Arc::new(response.into_inner()))),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(LookupError(status)),
    }
}

async fn resolve_source(
    mut api: ControlApi,
    request: ResolveSourceRequest,
) -> Result<Option<Arc<ResolvedSource>>, LookupError> {
    match api.resolve_source(request).await {
        Ok(response) => Ok(Some(Arc::new(response.into_inner()))),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(LookupError(status)),
    }
}
