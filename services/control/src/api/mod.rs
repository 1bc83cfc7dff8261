//! The `foco.v1.ControlService` implementation. Each RPC goes through [`ControlApi::call`]:
//! authenticate, check the key's scope for the RPC (`crate::scopes`), run the handler, record metrics, map the error through the one
//! error table. The handlers live in one module per resource.

mod accounts;
mod api_keys;
mod delivery;
mod endpoints;
mod messages;
mod messaging;
mod resolve;
mod routes;
mod rules;
mod samples;
mod scheduling;
mod sources;
mod templates;
mod verification;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use foco_proto::v1::control_service_server::ControlService;
use foco_proto::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

pub use api_keys::provision_service_keys;
pub use delivery::{DeliveryApi, Requeuer};
pub use messaging::MessagingApi;

use crate::auth::{Authenticator, Caller};
use crate::crypto::SecretSealer;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::notify::ChangeNotifier;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub sealer: Arc<SecretSealer>,
    pub auth: Authenticator,
    pub notifier: ChangeNotifier,
    pub metrics: Metrics,
    /// Endpoints on private addresses are accepted (`WebhookSettings`).
    pub webhooks_allow_private_hosts: bool,
    /// Durable publishes (here: status changes the API decides).
    pub publisher: crate::publisher::Publisher,
}

#[derive(Clone)]
pub struct ControlApi {
    state: AppState,
}

impl ControlApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn call<T, R, F, Fut>(
        &self,
        method: &'static str,
        request: Request<T>,
        handler: F,
    ) -> Result<Response<R>, Status>
    where
        F: FnOnce(AppState, Caller, T) -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        let started = Instant::now();
        let span = tracing::info_span!("grpc.request", rpc.method = method, otel.kind = "server");
        foco_runtime::telemetry::propagation::set_parent_from(
            &span,
            &foco_runtime::telemetry::propagation::GrpcMetadataRead(request.metadata()),
        );
        let state = self.state.clone();
        let result = async move {
            let caller = state.auth.authenticate(request.metadata()).await?;
            caller.require_scope_for(method)?;
            handler(state, caller, request.into_inner()).await
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        let outcome = match result {
            Ok(response) => Ok(Response::new(response)),
            Err(error) => {
                tracing::debug!(error = %error, "request refused");
                Err(error.into_status(method))
            }
        };
        let code = outcome
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        self.state.metrics.record(method, code, started.elapsed());
        outcome
    }
}

#[tonic::async_trait]
impl ControlService for ControlApi {
    async fn upsert_account(
        &self,
        request: Request<UpsertAccountRequest>,
    ) -> Result<Response<Account>, Status> {
        self.call("UpsertAccount", request, accounts::upsert).await
    }

    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<Account>, Status> {
        self.call("GetAccount", request, accounts::get).await
    }

    async fn list_accounts(
        &self,
        request: Request<ListAccountsRequest>,
    ) -> Result<Response<ListAccountsResponse>, Status> {
        self.call("ListAccounts", request, accounts::list).await
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        self.call("CreateApiKey", request, api_keys::create).await
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        self.call("ListApiKeys", request, api_keys::list).await
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<ApiKey>, Status> {
        self.call("RevokeApiKey", request, api_keys::revoke).await
    }

    async fn upsert_source(
        &self,
        request: Request<UpsertSourceRequest>,
    ) -> Result<Response<Source>, Status> {
        self.call("UpsertSource", request, sources::upsert).await
    }

    async fn get_source(
        &self,
        request: Request<GetSourceRequest>,
    ) -> Result<Response<Source>, Status> {
        self.call("GetSource", request, sources::get).await
    }

    async fn list_sources(
        &self,
        request: Request<ListSourcesRequest>,
    ) -> Result<Response<ListSourcesResponse>, Status> {
        self.call("ListSources", request, sources::list).await
    }

    async fn delete_source(
        &self,
        request: Request<DeleteSourceRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.call("DeleteSource", request, sources::delete).await
    }

    async fn upsert_rule(
        &self,
        request: Request<UpsertRuleRequest>,
    ) -> Result<Response<Rule>, Status> {
        self.call("UpsertRule", request, rules::upsert).await
    }

    async fn list_rules(
        &self,
        request: Request<ListRulesRequest>,
    ) -> Result<Response<ListRulesResponse>, Status> {
        self.call("ListRules", request, rules::list).await
    }

    async fn delete_rule(
        &self,
        request: Request<DeleteRuleRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.call("DeleteRule", request, rules::delete).await
    }

    async fn upsert_provider_route(
        &self,
        request: Request<UpsertProviderRouteRequest>,
    ) -> Result<Response<ProviderRoute>, Status> {
        self.call("UpsertProviderRoute", request, routes::upsert)
            .await
    }

    async fn list_provider_routes(
        &self,
        request: Request<ListProviderRoutesRequest>,
    ) -> Result<Response<ListProviderRoutesResponse>, Status> {
        self.call("ListProviderRoutes", request, routes::list).await
    }

    async fn delete_provider_route(
        &self,
        request: Request<DeleteProviderRouteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.call("DeleteProviderRoute", request, routes::delete)
            .await
    }

    async fn list_messages(
        &self,
        request: Request<ListMessagesRequest>,
    ) -> Result<Response<ListMessagesResponse>, Status> {
        self.call("ListMessages", request, messages::list).await
    }

    async fn resolve_source(
        &self,
        request: Request<ResolveSourceRequest>,
    ) -> Result<Response<ResolvedSource>, Status> {
        self.call("ResolveSource", request, resolve::source).await
    }

    async fn resolve_route(
        &self,
        request: Request<ResolveRouteRequest>,
    ) -> Result<Response<ResolvedRoute>, Status> {
        self.call("ResolveRoute", request, resolve::route).await
    }
}

/// Unix milliseconds of a timestamp.
fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}
