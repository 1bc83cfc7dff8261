//! Client of the Foco control API for the other services and the CLI: an
//! authenticated gRPC channel, and cached configuration lookups that are dropped
//! as soon as control announces a change on NATS (with a TTL as the backstop for a
//! missed announcement).
//!
//! Control is reached over plain HTTP/2 or, with an `https://` URL, over TLS
//! (the system's roots, or a CA file's).
//!
//! It holds no configuration of its own: control is the only source of truth.

mod message_status;
mod source_token;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use foco_proto::v1::control_service_client::ControlServiceClient;
use foco_proto::v1::delivery_service_client::DeliveryServiceClient;
use foco_proto::v1::messaging_service_client::MessagingServiceClient;
use foco_proto::v1::scheduling_service_client::SchedulingServiceClient;
use foco_proto::v1::{ResolveRouteRequest, ResolveSourceRequest, ResolvedRoute, ResolvedSource};
use futures::StreamExt;
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub use message_status::message_status_text;
pub use source_token::{
    SOURCE_TOKEN_PREFIX, SOURCE_TOKEN_RANDOM_CHARS, is_well_formed_source_token, webhook_url,
};

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
    #[error("cannot read the CA file {path}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a CA file is for an https:// control URL, not {url:?}")]
    CaFileWithoutTls { url: String },
    #[error("TLS set-up for {url:?}")]
    Tls {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// A lookup that could not be answered (control unreachable or failing). Callers
/// treat it as transient: retry later, never as "not found".
#[derive(Debug, Clone, thiserror::Error)]
#[error("control lookup failed: {0}")]
pub struct LookupError(pub tonic::Status);

/// Adds `authorization: Bearer <key>` to every call, and the caller's trace
/// context, so control's span of the call joins the caller's trace.
#[derive(Clone)]
pub struct BearerAuth {
    header: MetadataValue<Ascii>,
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.header.clone());
        foco_runtime::telemetry::propagation::inject_current(
            &mut foco_runtime::telemetry::propagation::GrpcMetadata(metadata),
        );
        Ok(request)
    }
}

pub type ControlApi = ControlServiceClient<InterceptedService<Channel, BearerAuth>>;

/// The scheduling API (delayed jobs, previews, event reports), served beside
/// `ControlService` on the same port with the same keys.
pub type SchedulingApi = SchedulingServiceClient<InterceptedService<Channel, BearerAuth>>;

/// `FOCO_CONTROL_URL`'s default: control on this machine.
pub const DEFAULT_CONTROL_URL: &str = "http://127.0.0.1:50051";

/// How a service reaches control: its URL, the service's own key and the CA
/// to trust for `https://`. `Debug` shows the URL without credentials and
/// never the key.
#[derive(Clone)]
pub struct ControlConfig {
    /// `FOCO_CONTROL_URL` [http://127.0.0.1:50051]
    pub url: String,
    /// `FOCO_CONTROL_API_KEY` (required): the service's key, with only the
    /// scopes it needs (`foco api-keys create --service NAME`).
    pub api_key: SecretString,
    /// `FOCO_CONTROL_CA_FILE` [none: the system's roots]: PEM of the CA to
    /// trust when the URL is `https://`.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ControlConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ControlConfig")
            .field("url", &foco_runtime::env::redacted_url(&self.url))
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl ControlConfig {
    /// Reads the three variables; `key_use` says what the service needs its
    /// key for, in the error when it is missing.
    pub fn from_lookup(
        env: &foco_runtime::env::Env,
        key_use: &str,
    ) -> Result<Self, foco_runtime::env::ConfigError> {
        Ok(Self {
            url: env.string_or("FOCO_CONTROL_URL", DEFAULT_CONTROL_URL),
            api_key: SecretString::from(env.required("FOCO_CONTROL_API_KEY", key_use)?),
            ca_file: env.optional("FOCO_CONTROL_CA_FILE").map(PathBuf::from),
        })
    }

    /// Control at `url` over plain HTTP/2 with `api_key` (tests, benchmarks).
    pub fn local(url: &str, api_key: &str) -> Self {
        Self {
            url: url.to_owned(),
            api_key: SecretString::from(api_key.to_owned()),
            ca_file: None,
        }
    }

    /// `ControlService`, dialled on first use (see [`connect`]).
    pub fn connect(&self) -> Result<ControlApi, ControlClientError> {
        connect_with_ca(&self.url, self.ca_file.as_deref(), &self.api_key)
    }
}

/// Connects lazily: the first call dials, and a control restart is survived.
pub fn connect(url: &str, api_key: &SecretString) -> Result<ControlApi, ControlClientError> {
    Ok(control_api(lazy_channel(url)?, BearerAuth::new(api_key)?))
}

/// Like [`connect`], trusting the CA certificate(s) in `ca_file` (PEM) for an
/// `https://` URL instead of the system's roots.
pub fn connect_with_ca(
    url: &str,
    ca_file: Option<&Path>,
    api_key: &SecretString,
) -> Result<ControlApi, ControlClientError> {
    Ok(control_api(
        lazy_channel_with_ca(url, ca_file)?,
        BearerAuth::new(api_key)?,
    ))
}

/// Like [`connect`], for `SchedulingService`.
pub fn connect_scheduling(
    url: &str,
    api_key: &SecretString,
) -> Result<SchedulingApi, ControlClientError> {
    Ok(scheduling_api(
        lazy_channel(url)?,
        BearerAuth::new(api_key)?,
    ))
}

/// The delivery API (dead letters, opt-outs, unknown jobs, message histories),
/// served beside `ControlService` on the same port with the same keys.
pub type DeliveryApi = DeliveryServiceClient<InterceptedService<Channel, BearerAuth>>;

/// Like [`connect`], for `DeliveryService`.
pub fn connect_delivery(
    url: &str,
    api_key: &SecretString,
) -> Result<DeliveryApi, ControlClientError> {
    Ok(delivery_api(lazy_channel(url)?, BearerAuth::new(api_key)?))
}

/// `ControlService` over a shared channel with one caller's key: a process that
/// acts for many keys (the console, one per signed-in user) dials control once
/// and multiplexes every caller over that connection.
pub fn control_api(channel: Channel, auth: BearerAuth) -> ControlApi {
    ControlServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
}

/// Like [`control_api`], for `SchedulingService`.
pub fn scheduling_api(channel: Channel, auth: BearerAuth) -> SchedulingApi {
    SchedulingServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
}

/// Like [`control_api`], for `DeliveryService`.
pub fn delivery_api(channel: Channel, auth: BearerAuth) -> DeliveryApi {
    DeliveryServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
}

/// The messaging API (send SMS, trigger events), served beside `ControlService`
/// on the same port with the same keys.
pub type MessagingApi = MessagingServiceClient<InterceptedService<Channel, BearerAuth>>;

/// Like [`connect`], for `MessagingService`.
pub fn connect_messaging(
    url: &str,
    api_key: &SecretString,
) -> Result<MessagingApi, ControlClientError> {
    Ok(messaging_api(lazy_channel(url)?, BearerAuth::new(api_key)?))
}

/// Like [`control_api`], for `MessagingService`.
pub fn messaging_api(channel: Channel, auth: BearerAuth) -> MessagingApi {
    MessagingServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
}

const MAX_DECODING_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// A channel to control that dials on first use, with the endpoint settings
/// every client of control shares. An `https://` URL is checked against the
/// system's roots.
pub fn lazy_channel(url: &str) -> Result<Channel, ControlClientError> {
    lazy_channel_with_ca(url, None)
}

/// Like [`lazy_channel`]; for an `https://` URL, `ca_file` (PEM) holds the
/// certificate authorities to trust instead of the system's roots (a private CA
/// or a self-signed certificate).
pub fn lazy_channel_with_ca(
    url: &str,
    ca_file: Option<&Path>,
) -> Result<Channel, ControlClientError> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|source| ControlClientError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    let https = endpoint.uri().scheme_str() == Some("https");
    if https {
        let tls = match ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| ControlClientError::CaFile {
                    path: path.to_owned(),
                    source,
                })?;
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
            }
            None => ClientTlsConfig::new().with_enabled_roots(),
        };
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|source| ControlClientError::Tls {
                url: url.to_owned(),
                source,
            })?;
    } else if ca_file.is_some() {
        return Err(ControlClientError::CaFileWithoutTls {
            url: url.to_owned(),
        });
    }
    Ok(endpoint.connect_lazy())
}

impl BearerAuth {
    /// The `authorization` header for `api_key`; refused when the key holds
    /// characters a header cannot carry.
    pub fn new(api_key: &SecretString) -> Result<Self, ControlClientError> {
        let header = format!("Bearer {}", api_key.expose_secret())
            .parse()
            .map_err(|_| ControlClientError::InvalidApiKey)?;
        Ok(Self { header })
    }
}

/// What control announces on the bus's config-changed subject after a write
/// (JSON). Caches drop only what the change can affect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigChange {
    pub account_id: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The account itself (country, zone, keys): everything of the account.
    Account,
    /// A source: the account's sources.
    Source,
    /// A rule: the account's sources (a resolved source carries its rules and
    /// the account's cancel clauses).
    Rule,
    /// A provider route: the account's routes.
    Route,
    /// A status webhook endpoint: which of the account's status changes become
    /// webhook deliveries (control's own lookup; no cache here holds it).
    Endpoint,
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
                .support_invalidation_closures()
                .build()
        };
        Self {
            api,
            sources_by_token: build(),
            sources_by_id: build(),
            routes: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .support_invalidation_closures()
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

    /// Drops what `change` can affect: the changed account's sources (and every
    /// "no such source" answer, since a new source may have that token) or its
    /// routes; everything when the change is not understood. Other accounts'
    /// entries stay, so one account's writes never send every replica back to
    /// control for every account.
    pub fn apply(&self, change: Option<&ConfigChange>) {
        let Some(change) = change else {
            self.invalidate_all();
            return;
        };
        let sources = matches!(
            change.kind,
            ChangeKind::Account | ChangeKind::Source | ChangeKind::Rule
        );
        // A route carries the account's inbound source (its id, when that
        // source exists and is enabled): a source change can change it.
        let routes = matches!(
            change.kind,
            ChangeKind::Account | ChangeKind::Route | ChangeKind::Source
        );
        let mut failed = false;
        if sources {
            for cache in [&self.sources_by_token, &self.sources_by_id] {
                let account_id = change.account_id.clone();
                failed |= cache
                    .invalidate_entries_if(move |_, source| {
                        source.as_ref().is_none_or(|source| {
                            source
                                .account
                                .as_ref()
                                .is_some_and(|account| account.id == account_id)
                        })
                    })
                    .is_err();
            }
        }
        if routes {
            let account_id = change.account_id.clone();
            failed |= self
                .routes
                .invalidate_entries_if(move |(account, _), _| *account == account_id)
                .is_err();
        }
        if failed {
            self.invalidate_all();
        }
    }

    /// Subscribes to control's change announcements and drops what each one can
    /// affect. Returns once subscribed, so no change after this call is missed.
    pub async fn watch_changes(
        &self,
        nats: &async_nats::Client,
        subject: String,
        shutdown: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
        let subscription = nats.subscribe(subject).await?;
        let cache = self.clone();
        Ok(tokio::spawn(apply_changes(
            subscription,
            shutdown,
            move |change| {
                tracing::debug!(?change, "configuration changed, dropping cached lookups");
                cache.apply(change);
            },
        )))
    }
}

/// Hands every announcement on `subscription` to `apply` until shutdown
/// (`None`: one that cannot be read, so everything may have changed).
pub async fn apply_changes(
    mut subscription: async_nats::Subscriber,
    shutdown: CancellationToken,
    apply: impl Fn(Option<&ConfigChange>),
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            message = subscription.next() => match message {
                Some(message) => {
                    let change = serde_json::from_slice::<ConfigChange>(&message.payload).ok();
                    apply(change.as_ref());
                }
                None => break,
            },
        }
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

#[cfg(test)]
mod tests {
    use foco_proto::v1::{Account, ProviderRoute, Source};

    use super::*;

    fn cache() -> ConfigCache {
        let channel = Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let auth = BearerAuth {
            header: "Bearer test".parse().unwrap(),
        };
        ConfigCache::new(
            ControlServiceClient::with_interceptor(channel, auth),
            Duration::from_secs(60),
        )
    }

    fn source(account_id: &str) -> Option<Arc<ResolvedSource>> {
        Some(Arc::new(ResolvedSource {
            source: Some(Source::default()),
            account: Some(Account {
                id: account_id.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    fn route() -> Option<Arc<ResolvedRoute>> {
        Some(Arc::new(ResolvedRoute {
            route: Some(ProviderRoute::default()),
            ..Default::default()
        }))
    }

    async fn filled() -> ConfigCache {
        let cache = cache();
        for account in ["a", "b"] {
            cache
                .sources_by_token
                .insert(format!("token-{account}"), source(account))
                .await;
            cache
                .sources_by_id
                .insert(format!("source-{account}"), source(account))
                .await;
            cache
                .routes
                .insert((account.to_owned(), String::new()), route())
                .await;
        }
        cache
            .sources_by_token
            .insert("unknown-token".to_owned(), None)
            .await;
        cache
    }

    async fn held(cache: &ConfigCache) -> Vec<String> {
        let mut held = Vec::new();
        for key in ["token-a", "token-b", "unknown-token"] {
            if cache.sources_by_token.get(key).await.is_some() {
                held.push(key.to_owned());
            }
        }
        for key in ["source-a", "source-b"] {
            if cache.sources_by_id.get(key).await.is_some() {
                held.push(key.to_owned());
            }
        }
        for account in ["a", "b"] {
            let key = (account.to_owned(), String::new());
            if cache.routes.get(&key).await.is_some() {
                held.push(format!("route-{account}"));
            }
        }
        held
    }

    fn change(kind: ChangeKind) -> ConfigChange {
        ConfigChange {
            account_id: "a".to_owned(),
            kind,
        }
    }

    #[tokio::test]
    async fn a_change_drops_only_what_it_can_affect() {
        let cache = filled().await;
        cache.apply(Some(&change(ChangeKind::Route)));
        assert_eq!(
            held(&cache).await,
            [
                "token-a",
                "token-b",
                "unknown-token",
                "source-a",
                "source-b",
                "route-b"
            ]
        );

        let cache = filled().await;
        cache.apply(Some(&change(ChangeKind::Rule)));
        assert_eq!(
            held(&cache).await,
            ["token-b", "source-b", "route-a", "route-b"]
        );

        let cache = filled().await;
        cache.apply(Some(&change(ChangeKind::Account)));
        assert_eq!(held(&cache).await, ["token-b", "source-b", "route-b"]);

        let cache = filled().await;
        cache.apply(Some(&change(ChangeKind::Source)));
        assert_eq!(held(&cache).await, ["token-b", "source-b", "route-b"]);

        let cache = filled().await;
        cache.apply(Some(&change(ChangeKind::Endpoint)));
        assert_eq!(
            held(&cache).await.len(),
            7,
            "endpoints are control's own lookup"
        );

        let cache = filled().await;
        cache.apply(None);
        assert!(held(&cache).await.is_empty());
    }

    #[test]
    fn announcements_read_as_control_writes_them() {
        let text = r#"{"account_id":"a","kind":"source"}"#;
        let change: ConfigChange = serde_json::from_str(text).unwrap();
        assert_eq!(change, self::change(ChangeKind::Source));
        assert_eq!(serde_json::to_string(&change).unwrap(), text);
    }
}
