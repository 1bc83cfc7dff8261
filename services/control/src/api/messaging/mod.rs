//! `foco.v1.MessagingService`: Foco as a messaging API for internal services.
//! `SendMessage(s)` stores SMS jobs that the sender then treats exactly as a
//! rule's; `TriggerEvent` stores an event that rules then treat exactly as a
//! webhook's. Every call goes through the same `ControlApi::call` as the control
//! API: authentication, account scoping, metrics and the one error table.

mod send;
mod trigger;
pub mod watch;

use chrono::Utc;
use foco_proto::v1::messaging_service_server::MessagingService;
use foco_proto::v1::{
    CreateEndpointRequest, CreateEndpointResponse, DeleteEndpointRequest, DeleteEndpointResponse,
    EndpointDelivery, ListEndpointDeliveriesRequest, ListEndpointDeliveriesResponse,
    ListEndpointsRequest, ListEndpointsResponse, ReplayEndpointDeliveryRequest,
    RotateEndpointSecretRequest, UpsertEndpointRequest, UpsertEndpointResponse,
};
use foco_proto::v1::{
    DeleteTemplateRequest, DeleteTemplateResponse, GetTemplateRequest, ListTemplatesRequest,
    ListTemplatesResponse, PreviewTemplateRequest, PreviewTemplateResponse, Template,
    UpsertTemplateRequest,
};
use foco_proto::v1::{
    SendError, SendMessageRequest, SendMessageResponse, SendMessageResult, SendMessagesRequest,
    SendMessagesResponse, TriggerEventRequest, TriggerEventResponse, WatchMessagesRequest,
    send_message_result,
};
use tonic::{Request, Response, Status};

use super::accounts::{self, AccountRow};
use super::endpoints;
use super::templates;
use super::{AppState, ControlApi};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::publisher::Publisher;

#[derive(Clone)]
pub struct MessagingApi {
    control: ControlApi,
    publisher: Publisher,
}

impl MessagingApi {
    pub fn new(state: AppState, publisher: Publisher) -> Self {
        Self {
            control: ControlApi::new(state),
            publisher,
        }
    }
}

/// The account a messaging call acts on: the one named, which the caller may
/// act on, or, when none is named, the calling account key's own.
async fn account_of(state: &AppState, caller: Caller, name: &str) -> Result<AccountRow, ApiError> {
    match caller {
        Caller::Account { account_id, .. } if name.is_empty() => {
            accounts::load_by_id(state, account_id)
                .await?
                .ok_or_else(|| ApiError::not_found("the API key's account no longer exists"))
        }
        _ if name.is_empty() => Err(ApiError::invalid_field(
            "account",
            "is required with the admin API key",
        )),
        _ => accounts::authorize(state, caller, name).await,
    }
}

#[tonic::async_trait]
impl MessagingService for MessagingApi {
    type WatchMessagesStream = watch::UpdateStream;

    async fn create_endpoint(
        &self,
        request: Request<CreateEndpointRequest>,
    ) -> Result<Response<CreateEndpointResponse>, Status> {
        self.control
            .call(
                "CreateEndpoint",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    endpoints::create(&state, &account, request).await
                },
            )
            .await
    }

    async fn list_endpoints(
        &self,
        request: Request<ListEndpointsRequest>,
    ) -> Result<Response<ListEndpointsResponse>, Status> {
        self.control
            .call(
                "ListEndpoints",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    endpoints::list(&state, &account, request).await
                },
            )
            .await
    }

    async fn delete_endpoint(
        &self,
        request: Request<DeleteEndpointRequest>,
    ) -> Result<Response<DeleteEndpointResponse>, Status> {
        self.control
            .call(
                "DeleteEndpoint",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    endpoints::delete(&state, &account, request).await
                },
            )
            .await
    }

    async fn upsert_endpoint(
        &self,
        request: Request<UpsertEndpointRequest>,
    ) -> Result<Response<UpsertEndpointResponse>, Status> {
        self.control
            .call(
                "UpsertEndpoint",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    endpoints::upsert(&state, &account, request).await
                },
            )
            .await
    }

    async fn rotate_endpoint_secret(
        &self,
        request: Request<RotateEndpointSecretRequest>,
    ) -> Result<Response<CreateEndpointResponse>, Status> {
        self.control
            .call(
                "RotateEndpointSecret",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    endpoints::rotate(&state, &account, request).await
                },
            )
            .await
    }

    async fn list_endpoint_deliveries(
        &self,
        request: Request<ListEndpointDeliveriesRequest>,
    ) -> Result<Response<ListEndpointDeliveriesResponse>, Status> {
        self.control
            .call(
                "ListEndpointDeliveries",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    endpoints::deliveries(&state, &account, request).await
                },
            )
            .await
    }

    async fn replay_endpoint_delivery(
        &self,
        request: Request<ReplayEndpointDeliveryRequest>,
    ) -> Result<Response<EndpointDelivery>, Status> {
        self.control
            .call(
                "ReplayEndpointDelivery",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    endpoints::replay(&state, &account, request).await
                },
            )
            .await
    }

    async fn upsert_template(
        &self,
        request: Request<UpsertTemplateRequest>,
    ) -> Result<Response<Template>, Status> {
        self.control
            .call(
                "UpsertTemplate",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    templates::upsert(&state, &account, request).await
                },
            )
            .await
    }

    async fn get_template(
        &self,
        request: Request<GetTemplateRequest>,
    ) -> Result<Response<Template>, Status> {
        self.control
            .call(
                "GetTemplate",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    templates::get(&state, &account, request).await
                },
            )
            .await
    }

    async fn list_templates(
        &self,
        request: Request<ListTemplatesRequest>,
    ) -> Result<Response<ListTemplatesResponse>, Status> {
        self.control
            .call(
                "ListTemplates",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    templates::list(&state, &account, request).await
                },
            )
            .await
    }

    async fn delete_template(
        &self,
        request: Request<DeleteTemplateRequest>,
    ) -> Result<Response<DeleteTemplateResponse>, Status> {
        self.control
            .call(
                "DeleteTemplate",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    templates::delete(&state, &account, request).await
                },
            )
            .await
    }

    async fn preview_template(
        &self,
        request: Request<PreviewTemplateRequest>,
    ) -> Result<Response<PreviewTemplateResponse>, Status> {
        self.control
            .call(
                "PreviewTemplate",
                request,
                |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    templates::preview(&state, &account, request).await
                },
            )
            .await
    }

    async fn watch_messages(
        &self,
        request: Request<WatchMessagesRequest>,
    ) -> Result<Response<Self::WatchMessagesStream>, Status> {
        let publisher = self.publisher.clone();
        self.control
            .call(
                "WatchMessages",
                request,
                move |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    watch::watch(state.pool.clone(), &publisher, &account, request).await
                },
            )
            .await
    }

    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let publisher = self.publisher.clone();
        self.control
            .call(
                "SendMessage",
                request,
                move |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    let templates =
                        send::templates_named(&state, &account, std::slice::from_ref(&request))
                            .await?;
                    let prepared = send::prepare(&account, &request, &templates, Utc::now())?;
                    send::store(&state, &publisher, caller, &account, &[prepared])
                        .await?
                        .pop()
                        .unwrap_or_else(|| Err(ApiError::Corrupt("no result".to_owned())))
                },
            )
            .await
    }

    async fn send_messages(
        &self,
        request: Request<SendMessagesRequest>,
    ) -> Result<Response<SendMessagesResponse>, Status> {
        let publisher = self.publisher.clone();
        self.control
            .call(
                "SendMessages",
                request,
                move |state, caller, request| async move {
                    send_batch(&state, &publisher, caller, request).await
                },
            )
            .await
    }

    async fn trigger_event(
        &self,
        request: Request<TriggerEventRequest>,
    ) -> Result<Response<TriggerEventResponse>, Status> {
        let publisher = self.publisher.clone();
        self.control
            .call(
                "TriggerEvent",
                request,
                move |state, caller, request| async move {
                    let account = account_of(&state, caller, &request.account).await?;
                    trigger::trigger(&state, &publisher, &account, request).await
                },
            )
            .await
    }
}

async fn send_batch(
    state: &AppState,
    publisher: &Publisher,
    caller: Caller,
    request: SendMessagesRequest,
) -> Result<SendMessagesResponse, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid_field("messages", "is empty"));
    }
    if request.messages.len() > send::MAX_BATCH {
        return Err(ApiError::invalid_field(
            "messages",
            format!("has more than {} messages", send::MAX_BATCH),
        ));
    }
    let account = account_of(state, caller, &request.account).await?;
    let now = Utc::now();
    let templates = send::templates_named(state, &account, &request.messages).await?;
    let checked: Vec<Result<send::PreparedMessage, ApiError>> = request
        .messages
        .iter()
        .map(|message| send::prepare(&account, message, &templates, now))
        .collect();
    let mut results: Vec<Option<Result<SendMessageResponse, ApiError>>> = Vec::new();
    let mut valid: Vec<send::PreparedMessage> = Vec::new();
    let mut valid_positions: Vec<usize> = Vec::new();
    for (position, checked) in checked.into_iter().enumerate() {
        match checked {
            Ok(message) => {
                valid.push(message);
                valid_positions.push(position);
                results.push(None);
            }
            Err(error) => results.push(Some(Err(error))),
        }
    }
    if !valid.is_empty() {
        let stored = send::store(state, publisher, caller, &account, &valid).await?;
        for (position, result) in valid_positions.into_iter().zip(stored) {
            results[position] = Some(result);
        }
    }
    Ok(SendMessagesResponse {
        results: results
            .into_iter()
            .map(|result| SendMessageResult {
                result: Some(match result {
                    Some(Ok(response)) => send_message_result::Result::Message(response),
                    Some(Err(error)) => send_message_result::Result::Error(send_error(error)),
                    None => send_message_result::Result::Error(send_error(ApiError::Corrupt(
                        "message left unanswered".to_owned(),
                    ))),
                }),
            })
            .collect(),
    })
}

/// One message's refusal, as `SendMessage` would have answered it.
fn send_error(error: ApiError) -> SendError {
    let field = match &error {
        ApiError::InvalidField { field, .. } => (*field).to_owned(),
        _ => String::new(),
    };
    let status = error.into_status("SendMessages");
    SendError {
        code: status.code() as i32,
        message: status.message().to_owned(),
        field,
    }
}
