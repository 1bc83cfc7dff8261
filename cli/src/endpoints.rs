//! `foco endpoints` (status webhooks: list, create, delete, deliveries,
//! replay) and `foco messages watch` (the account's status changes as they
//! happen). Both are the messaging API from a shell.

use std::io::Write;

use clap::{Args, Subcommand};
use foco_control_client::MessagingApi;
use foco_proto::v1::{
    CreateEndpointRequest, DeleteEndpointRequest, Endpoint, EndpointDelivery,
    ListEndpointDeliveriesRequest, ListEndpointsRequest, MessageStatusUpdate,
    ReplayEndpointDeliveryRequest, WatchMessagesRequest,
};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::output::{self, OutputFormat, rfc3339};

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// The account's status webhook endpoints.
    List(FormatArg),
    /// Register an endpoint; prints its signing secret (shown only now).
    Create {
        /// Where changes are POSTed (https in production).
        #[arg(long)]
        url: String,
        /// Unique in the account (what `foco apply` files call it); absent:
        /// `endpoint-` and the start of its id.
        #[arg(long, default_value = "")]
        name: String,
        /// Only these event types (repeatable): message.sent, message.delivered,
        /// message.failed, ..., inbound.received. Absent: all.
        #[arg(long = "event-type", value_name = "TYPE")]
        event_types: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Delete an endpoint (by id or name) and its delivery history.
    Delete {
        id: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Deliveries to an endpoint (by id or name), newest first, with their
    /// attempts.
    Deliveries {
        endpoint_id: String,
        /// pending, succeeded or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Send a delivery again now (and enable its endpoint again if it was disabled).
    Replay {
        endpoint_id: String,
        delivery_id: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only this message (repeatable).
    #[arg(long = "message", value_name = "ID")]
    pub message_ids: Vec<String>,
    /// Only this kind (repeatable): sent, delivered, failed, undelivered,
    /// expired, cancelled, opted_out, scheduled, unknown, inbound.
    #[arg(long = "status", value_name = "KIND")]
    pub statuses: Vec<String>,
    /// Only messages sent with this metadata key.
    #[arg(long)]
    pub metadata_key: Option<String>,
    /// Resume after this cursor (the last change printed).
    #[arg(long, value_name = "CURSOR", default_value_t = 0)]
    pub after: u64,
    /// Without --after: start from the oldest change kept rather than now.
    #[arg(long)]
    pub from_oldest: bool,
    /// Stop after this many changes; 0: run until interrupted.
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
    /// `json`: one JSON object per line.
    #[command(flatten)]
    pub format: FormatArg,
}

pub async fn run(
    api: &mut MessagingApi,
    account: &str,
    command: &EndpointsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        EndpointsCommand::List(format) => {
            let listed = api
                .list_endpoints(ListEndpointsRequest {
                    account: account.to_owned(),
                })
                .await
                .map_err(|status| CliError::api("list endpoints", status))?
                .into_inner();
            print_endpoints(&listed.endpoints, format.output, out)
        }
        EndpointsCommand::Create {
            url,
            name,
            event_types,
            description,
            format,
        } => {
            let created = api
                .create_endpoint(CreateEndpointRequest {
                    account: account.to_owned(),
                    url: url.clone(),
                    event_types: event_types.clone(),
                    description: description.clone(),
                    name: name.clone(),
                })
                .await
                .map_err(|status| CliError::api("create endpoint", status))?
                .into_inner();
            let endpoint = created.endpoint.unwrap_or_default();
            match format.output {
                OutputFormat::Json => {
                    let mut value = endpoint_json(&endpoint);
                    value["secret"] = json!(created.secret);
                    output::json(out, &value)
                }
                OutputFormat::Table => {
                    writeln!(
                        out,
                        "endpoint {} ({}) -> {}",
                        endpoint.name, endpoint.id, endpoint.url
                    )?;
                    writeln!(out, "signing secret (shown only now): {}", created.secret)?;
                    Ok(())
                }
            }
        }
        EndpointsCommand::Delete { id, format } => {
            api.delete_endpoint(DeleteEndpointRequest {
                account: account.to_owned(),
                id: id.clone(),
            })
            .await
            .map_err(|status| CliError::api(format!("delete endpoint {id}"), status))?;
            match format.output {
                OutputFormat::Json => output::json(out, &json!({ "deleted": id })),
                OutputFormat::Table => Ok(writeln!(out, "endpoint {id} deleted")?),
            }
        }
        EndpointsCommand::Deliveries {
            endpoint_id,
            state,
            limit,
            format,
        } => {
            let listed = api
                .list_endpoint_deliveries(ListEndpointDeliveriesRequest {
                    account: account.to_owned(),
                    endpoint_id: endpoint_id.clone(),
                    state: state.clone().unwrap_or_default(),
                    limit: *limit,
                })
                .await
                .map_err(|status| CliError::api("list deliveries", status))?
                .into_inner();
            print_deliveries(&listed.deliveries, format.output, out)
        }
        EndpointsCommand::Replay {
            endpoint_id,
            delivery_id,
            format,
        } => {
            let replayed = api
                .replay_endpoint_delivery(ReplayEndpointDeliveryRequest {
                    account: account.to_owned(),
                    endpoint_id: endpoint_id.clone(),
                    delivery_id: delivery_id.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("replay {delivery_id}"), status))?
                .into_inner();
            print_deliveries(std::slice::from_ref(&replayed), format.output, out)
        }
    }
}

fn endpoint_json(endpoint: &Endpoint) -> serde_json::Value {
    json!({
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": rfc3339(endpoint.created_at_ms),
        "failing_since": rfc3339(endpoint.failing_since_ms),
    })
}

fn endpoint_row(endpoint: &Endpoint) -> Vec<String> {
    vec![
        endpoint.name.clone(),
        endpoint.id.clone(),
        if endpoint.enabled {
            "enabled".to_owned()
        } else {
            format!("disabled: {}", endpoint.disabled_reason)
        },
        if endpoint.event_types.is_empty() {
            "all".to_owned()
        } else {
            endpoint.event_types.join(",")
        },
        endpoint.url.clone(),
    ]
}

fn print_endpoints(
    endpoints: &[Endpoint],
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let header = ["NAME", "ID", "STATE", "EVENTS", "URL"];
    output::list(
        endpoints,
        format,
        out,
        endpoint_json,
        (&header, endpoint_row),
    )
}

fn delivery_json(delivery: &EndpointDelivery) -> serde_json::Value {
    json!({
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_type": delivery.event_type,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": rfc3339(delivery.next_attempt_at_ms),
        "created_at": rfc3339(delivery.created_at_ms),
        "payload": serde_json::from_str::<serde_json::Value>(&delivery.payload)
            .unwrap_or_else(|_| json!(delivery.payload)),
        "attempt_log": delivery.attempt_log.iter().map(|attempt| json!({
            "at": rfc3339(attempt.at_ms),
            "status_code": attempt.status_code,
            "response": attempt.response,
            "latency_ms": attempt.latency_ms,
        })).collect::<Vec<_>>(),
    })
}

fn delivery_row(delivery: &EndpointDelivery) -> Vec<String> {
    let last = delivery
        .attempt_log
        .last()
        .map_or_else(String::new, |last| {
            if last.status_code == 0 {
                last.response.clone()
            } else {
                format!("HTTP {} in {} ms", last.status_code, last.latency_ms)
            }
        });
    vec![
        rfc3339(delivery.created_at_ms).unwrap_or_default(),
        delivery.id.clone(),
        delivery.event_type.clone(),
        delivery.state.clone(),
        delivery.attempts.to_string(),
        last,
    ]
}

fn print_deliveries(
    deliveries: &[EndpointDelivery],
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let header = ["CREATED", "ID", "EVENT", "STATE", "ATTEMPTS", "LAST"];
    output::list(
        deliveries,
        format,
        out,
        delivery_json,
        (&header, delivery_row),
    )
}

/// Prints changes as they arrive, flushing each, until the stream ends or
/// `--limit` is reached.
pub async fn watch(
    api: &mut MessagingApi,
    account: &str,
    args: &WatchArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut updates = api
        .watch_messages(WatchMessagesRequest {
            account: account.to_owned(),
            message_ids: args.message_ids.clone(),
            statuses: args.statuses.clone(),
            metadata_key: args.metadata_key.clone().unwrap_or_default(),
            after_cursor: args.after,
            from_oldest: args.from_oldest,
        })
        .await
        .map_err(|status| CliError::api("watch messages", status))?
        .into_inner();
    let mut printed = 0_u64;
    if args.format.output == OutputFormat::Table {
        writeln!(out, "CURSOR  AT  KIND  MESSAGE  TO  REASON")?;
    }
    while let Some(update) = updates
        .message()
        .await
        .map_err(|status| CliError::api("watch messages", status))?
    {
        print_update(&update, args.format.output, out)?;
        out.flush()?;
        printed += 1;
        if args.limit > 0 && printed >= args.limit {
            break;
        }
    }
    Ok(())
}

fn print_update(
    update: &MessageStatusUpdate,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let change = update.change.clone().unwrap_or_default();
    match format {
        OutputFormat::Json => {
            let line = json!({
                "cursor": update.cursor,
                "id": change.id,
                "message_id": change.message_id,
                "kind": change.kind,
                "at": rfc3339(change.at_ms),
                "to": change.to,
                "reason": change.reason,
                "provider": change.provider,
                "provider_message_id": change.provider_message_id,
                "metadata": update.metadata,
            });
            writeln!(out, "{line}")?;
        }
        OutputFormat::Table => {
            writeln!(
                out,
                "{}  {}  {}  {}  {}  {}",
                update.cursor,
                rfc3339(change.at_ms).unwrap_or_default(),
                change.kind,
                change.message_id,
                change.to,
                change.reason
            )?;
        }
    }
    Ok(())
}
