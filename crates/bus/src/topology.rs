//! Creates the streams and durable consumers the services need. Every service calls
//! `ensure_streams` at start, so the order in which services start does not matter.
//!
//! ## Starting beside the bus
//! A service may start before JetStream can answer: NATS still coming up (the
//! connection is made in the background), a cluster still electing its meta
//! leader, or a replicated stream's first leader election outlasting the
//! request's timeout on a busy machine. Setting up the streams and consumers
//! then fails with a timeout, no responders or a "temporarily unavailable"
//! cluster error; these are tried again, with a warning each time, for up to
//! `SETUP_PATIENCE`, and any other error (a misconfiguration such as more
//! replicas than the cluster has is reported as it comes) ends the start.
//!
//! ## Retention
//! Each stream is a work queue of one consuming service (FOCO_EVENTS: rules,
//! FOCO_SMS: the sender, FOCO_RECEIPTS: the sender's receipts consumer, each a
//! durable consumer its replicas share): a message is removed once it is
//! acknowledged, and kept, however old, until then. So the disk holds the
//! backlog, not history, and nothing that is still being worked on (a job
//! waiting out a provider outage, an event retried through a Postgres outage)
//! ever ages out unrecorded: there is no age limit. What bounds a stream is its
//! size, `max_bytes` (`FOCO_BUS_MAX_BYTES`): when the backlog reaches it, new
//! messages are refused (discard-new) and publishers say so (ingress answers
//! 503 with Retry-After), rather than older work being dropped.
//!
//! FOCO_STATUS is the exception: the status feed is history that readers
//! (`WatchMessages`, the status-webhook worker) replay from a stream sequence,
//! so it keeps messages after they are read, for `status_max_age`, and drops
//! the oldest when it reaches `max_bytes` (a reader that far behind resumes
//! from the oldest change kept).

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode, consumer, stream};

use crate::BusNames;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("could not create or read stream {stream}")]
    Stream {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("could not read the configuration of stream {stream}")]
    Info {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::RequestError,
    },
    #[error("could not update stream {stream}")]
    Update {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::UpdateStreamError,
    },
    #[error("could not read stream {stream}")]
    GetStream {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::GetStreamError,
    },
    #[error("could not update consumer {consumer}")]
    ConsumerUpdate {
        consumer: String,
        #[source]
        source: async_nats::jetstream::stream::ConsumerUpdateError,
    },
    #[error("could not create or read consumer {consumer} on {stream}")]
    Consumer {
        stream: String,
        consumer: String,
        #[source]
        source: async_nats::jetstream::stream::ConsumerError,
    },
}

impl TopologyError {
    /// Whether the error says JetStream is not able to answer yet (see the
    /// module docs), rather than that the request is wrong.
    pub fn is_transient(&self) -> bool {
        use jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind, RequestErrorKind};
        use jetstream::stream::{ConsumerErrorKind, ConsumerUpdateErrorKind};
        match self {
            Self::Stream { source, .. } | Self::Update { source, .. } => match source.kind() {
                CreateStreamErrorKind::TimedOut
                | CreateStreamErrorKind::JetStreamUnavailable
                | CreateStreamErrorKind::Response => true,
                CreateStreamErrorKind::JetStream(server) => not_ready(&server),
                _ => false,
            },
            Self::Info { source, .. } => matches!(
                source.kind(),
                RequestErrorKind::TimedOut | RequestErrorKind::NoResponders
            ),
            Self::GetStream { source, .. } => match source.kind() {
                GetStreamErrorKind::Request => true,
                GetStreamErrorKind::JetStream(server) => not_ready(&server),
                _ => false,
            },
            Self::Consumer { source, .. } => match source.kind() {
                ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request => true,
                ConsumerErrorKind::JetStream(server) => not_ready(&server),
                _ => false,
            },
            Self::ConsumerUpdate { source, .. } => match source.kind() {
                ConsumerUpdateErrorKind::TimedOut | ConsumerUpdateErrorKind::Request => true,
                ConsumerUpdateErrorKind::JetStream(server) => not_ready(&server),
                _ => false,
            },
        }
    }
}

/// A JetStream API error that a cluster coming up (or electing) answers with:
/// 503, no meta leader or quorum yet, a peer not yet current for placement,
/// or a stream's store created while its directory was being removed
/// (nats-server removes an account's streams directory with its last stream).
fn not_ready(server: &jetstream::Error) -> bool {
    server.code() == 503
        || [
            ErrorCode::CLUSTER_INCOMPLETE,
            ErrorCode::CLUSTER_NO_PEERS,
            ErrorCode::CLUSTER_NOT_ACTIVE,
            ErrorCode::CLUSTER_NOT_ASSIGNED,
            ErrorCode::CLUSTER_NOT_AVAILABLE,
            ErrorCode::CLUSTER_NOT_LEADER,
            ErrorCode::RAFT_GENERAL,
            ErrorCode::STREAM_CREATE,
        ]
        .contains(&server.error_code())
}

/// How long setting up streams and consumers is tried again while JetStream
/// cannot answer yet (see the module docs): longer than a cluster takes to
/// elect its leaders, shorter than the manifests' startup probes allow (60 s),
/// so that a service gives up with its own error rather than being killed.
pub const SETUP_PATIENCE: Duration = Duration::from_secs(50);

/// `attempt`, tried again while it fails with a transient error, for up to
/// `SETUP_PATIENCE`, waiting longer each time (0.1 s doubling to 5 s).
async fn patiently<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, TopologyError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TopologyError>>,
{
    let deadline = tokio::time::Instant::now() + SETUP_PATIENCE;
    let mut pause = Duration::from_millis(100);
    loop {
        match attempt().await {
            Err(error)
                if error.is_transient() && tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::warn!(
                    error = %foco_runtime::error_chain(&error),
                    retry_in = ?pause,
                    "{what}: JetStream is not ready; trying again"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            result => return result,
        }
    }
}

/// How long JetStream remembers a message id to drop a second publish of it.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Default bound of each stream's backlog.
pub const DEFAULT_MAX_BYTES: i64 = 1 << 30;
/// Default age of the oldest status change FOCO_STATUS keeps.
pub const DEFAULT_STATUS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The operator's settings of the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// `FOCO_BUS_REPLICAS` [1]: 1 on a single server, 3 in production.
    pub replicas: usize,
    /// `FOCO_BUS_MAX_BYTES` [1 GiB]: most bytes of unprocessed messages each
    /// stream holds before it refuses new ones.
    pub max_bytes: i64,
    /// [`DUPLICATE_WINDOW`]; shorter only in tests that cross it.
    pub duplicate_window: Duration,
    /// `FOCO_BUS_STATUS_MAX_AGE` [7d]: how long FOCO_STATUS keeps a status
    /// change, so how far back a reader can resume.
    pub status_max_age: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            max_bytes: DEFAULT_MAX_BYTES,
            duplicate_window: DUPLICATE_WINDOW,
            status_max_age: DEFAULT_STATUS_MAX_AGE,
        }
    }
}

impl StreamSettings {
    pub fn from_lookup(
        env: &foco_runtime::env::Env,
    ) -> Result<Self, foco_runtime::env::ConfigError> {
        let defaults = Self::default();
        let settings = Self {
            replicas: env.parse_or("FOCO_BUS_REPLICAS", defaults.replicas)?,
            max_bytes: env.parse_or("FOCO_BUS_MAX_BYTES", defaults.max_bytes)?,
            duplicate_window: defaults.duplicate_window,
            status_max_age: env.duration_or("FOCO_BUS_STATUS_MAX_AGE", defaults.status_max_age)?,
        };
        if settings.replicas == 0 || settings.replicas > 5 {
            return Err(foco_runtime::env::ConfigError::new(
                "FOCO_BUS_REPLICAS",
                &settings.replicas.to_string(),
                "must be 1 to 5",
            ));
        }
        if settings.max_bytes < 1 << 20 {
            return Err(foco_runtime::env::ConfigError::new(
                "FOCO_BUS_MAX_BYTES",
                &settings.max_bytes.to_string(),
                "must be at least 1 MiB (1048576)",
            ));
        }
        Ok(settings)
    }
}

/// Creates FOCO_EVENTS, FOCO_SMS and FOCO_RECEIPTS if they do not exist (file
/// storage, work-queue retention, see the module docs), and brings existing
/// ones to `settings` (size bound, discard policy, replicas, duplicate window),
/// logging what changed. A stream created by an older Foco with limits
/// retention is kept as it is, with a warning: its retention cannot be changed
/// in place. Tried again while JetStream cannot answer yet (module docs).
pub async fn ensure_streams(
    jetstream: &jetstream::Context,
    names: &BusNames,
    settings: StreamSettings,
) -> Result<(), TopologyError> {
    patiently("setting up the streams", || async {
        ensure_work_streams(jetstream, names, settings).await?;
        ensure_status_stream_once(jetstream, names, settings).await
    })
    .await
}

async fn ensure_work_streams(
    jetstream: &jetstream::Context,
    names: &BusNames,
    settings: StreamSettings,
) -> Result<(), TopologyError> {
    let streams = [
        (
            names.events_stream(),
            names.events_filter(),
            "webhook events accepted by ingress",
        ),
        (
            names.sms_stream(),
            names.sms_filter(),
            "SMS jobs produced by rules",
        ),
        (
            names.receipts_stream(),
            names.receipts_filter(),
            "delivery receipts and inbound SMS from providers",
        ),
    ];
    for (name, subject, description) in streams {
        let config = stream::Config {
            name: name.clone(),
            description: Some(description.to_owned()),
            subjects: vec![subject],
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window,
            retention: stream::RetentionPolicy::WorkQueue,
            discard: stream::DiscardPolicy::New,
            max_bytes: settings.max_bytes,
            ..Default::default()
        };
        let current = created_config(jetstream, &config).await?;
        if current.retention != stream::RetentionPolicy::WorkQueue {
            tracing::warn!(
                stream = %name,
                "stream was created with {:?} retention: it keeps acknowledged messages until they age out and has no size bound; recreate it (drain it, delete it, restart a service) to get work-queue retention",
                current.retention
            );
            continue;
        }
        let changes = stream_changes(&current, &config);
        if changes.is_empty() {
            continue;
        }
        let updated = stream::Config {
            max_bytes: config.max_bytes,
            discard: config.discard,
            num_replicas: config.num_replicas,
            duplicate_window: config.duplicate_window,
            ..current
        };
        update_stream(jetstream, updated).await?;
        tracing::info!(stream = %name, changes = %changes.join(", "), "stream settings updated");
    }
    Ok(())
}

/// FOCO_STATUS, with limits retention (see the module docs); its age and size
/// bounds follow `settings`. Part of `ensure_streams`; on its own for a
/// reader of the feed that produces nothing else. Tried again as `ensure_streams` is.
pub async fn ensure_status_stream(
    jetstream: &jetstream::Context,
    names: &BusNames,
    settings: StreamSettings,
) -> Result<(), TopologyError> {
    patiently("setting up the status stream", || {
        ensure_status_stream_once(jetstream, names, settings)
    })
    .await
}

async fn ensure_status_stream_once(
    jetstream: &jetstream::Context,
    names: &BusNames,
    settings: StreamSettings,
) -> Result<(), TopologyError> {
    let name = names.status_stream();
    let config = stream::Config {
        name: name.clone(),
        description: Some("status changes of messages, kept as history".to_owned()),
        subjects: vec![names.status_filter()],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_bytes: settings.max_bytes,
        max_age: settings.status_max_age,
        ..Default::default()
    };
    let current = created_config(jetstream, &config).await?;
    let mut changes = stream_changes(&current, &config);
    note(&mut changes, "max_age", current.max_age, config.max_age);
    if changes.is_empty() {
        return Ok(());
    }
    let updated = stream::Config {
        max_bytes: config.max_bytes,
        discard: config.discard,
        num_replicas: config.num_replicas,
        duplicate_window: config.duplicate_window,
        max_age: config.max_age,
        ..current
    };
    update_stream(jetstream, updated).await?;
    tracing::info!(stream = %name, changes = %changes.join(", "), "stream settings updated");
    Ok(())
}

/// The configuration of the stream `config` names, as the server holds it,
/// once the stream exists (created with `config` if it did not).
async fn created_config(
    jetstream: &jetstream::Context,
    config: &stream::Config,
) -> Result<stream::Config, TopologyError> {
    let mut stream = jetstream
        .get_or_create_stream(config.clone())
        .await
        .map_err(|source| TopologyError::Stream {
            stream: config.name.clone(),
            source,
        })?;
    Ok(stream
        .info()
        .await
        .map_err(|source| TopologyError::Info {
            stream: config.name.clone(),
            source,
        })?
        .config
        .clone())
}

async fn update_stream(
    jetstream: &jetstream::Context,
    updated: stream::Config,
) -> Result<(), TopologyError> {
    let name = updated.name.clone();
    jetstream
        .update_stream(updated)
        .await
        .map_err(|source| TopologyError::Update {
            stream: name,
            source,
        })?;
    Ok(())
}

/// What differs between a stream's `current` settings and the `wanted` ones
/// among those reconciled in place, as "setting: from → to".
fn stream_changes(current: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut changes = Vec::new();
    note(
        &mut changes,
        "max_bytes",
        current.max_bytes,
        wanted.max_bytes,
    );
    note(&mut changes, "discard", current.discard, wanted.discard);
    note(
        &mut changes,
        "replicas",
        current.num_replicas,
        wanted.num_replicas,
    );
    note(
        &mut changes,
        "duplicate_window",
        current.duplicate_window,
        wanted.duplicate_window,
    );
    changes
}

/// Adds "setting: from → to" to `changes` when the two differ.
fn note<T: PartialEq + std::fmt::Debug>(changes: &mut Vec<String>, setting: &str, from: T, to: T) {
    if from != to {
        changes.push(format!("{setting}: {from:?} → {to:?}"));
    }
}

/// Settings of a durable pull consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub stream: String,
    pub durable_name: String,
    pub filter_subject: String,
    /// Longer than the slowest handling of one message, or it is redelivered while
    /// still in flight.
    pub ack_wait: Duration,
    /// Bounds in-flight work across all replicas of the consuming service.
    pub max_ack_pending: i64,
    /// Deliveries before JetStream gives up on a message; handlers record and
    /// terminate poison messages well before this.
    pub max_deliver: i64,
}

/// Creates the durable consumer, or brings an existing one to `settings`
/// (ack wait, most acks pending, most deliveries), logging what changed: these
/// are operator settings, and a restart with new ones must apply them. Tried
/// again as `ensure_streams` is.
pub async fn ensure_consumer(
    jetstream: &jetstream::Context,
    settings: &ConsumerSettings,
) -> Result<consumer::PullConsumer, TopologyError> {
    patiently("setting up the consumer", || {
        ensure_consumer_once(jetstream, settings)
    })
    .await
}

async fn ensure_consumer_once(
    jetstream: &jetstream::Context,
    settings: &ConsumerSettings,
) -> Result<consumer::PullConsumer, TopologyError> {
    let stream = jetstream
        .get_stream(&settings.stream)
        .await
        .map_err(|source| TopologyError::GetStream {
            stream: settings.stream.clone(),
            source,
        })?;
    let config = consumer::pull::Config {
        durable_name: Some(settings.durable_name.clone()),
        filter_subject: settings.filter_subject.clone(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_ack_pending: settings.max_ack_pending,
        max_deliver: settings.max_deliver,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let consumer_error = |source| TopologyError::Consumer {
        stream: settings.stream.clone(),
        consumer: settings.durable_name.clone(),
        source,
    };
    let config_again = config.clone();
    let existing: consumer::PullConsumer = stream
        .get_or_create_consumer(&settings.durable_name, config)
        .await
        .map_err(consumer_error)?;
    let current = &existing.cached_info().config;
    let changes = consumer_changes(current, settings);
    if changes.is_empty() {
        return Ok(existing);
    }
    let mut updated = current.clone();
    updated.ack_wait = settings.ack_wait;
    updated.max_ack_pending = settings.max_ack_pending;
    updated.max_deliver = settings.max_deliver;
    jetstream
        .update_consumer_on_stream(updated, &settings.stream)
        .await
        .map_err(|source| TopologyError::ConsumerUpdate {
            consumer: settings.durable_name.clone(),
            source,
        })?;
    tracing::info!(
        consumer = %settings.durable_name,
        changes = %changes.join(", "),
        "consumer settings updated"
    );
    // Read again, so the consumer's cached settings are the new ones.
    stream
        .get_or_create_consumer(&settings.durable_name, config_again)
        .await
        .map_err(consumer_error)
}

/// What differs between a consumer's `current` settings and `wanted`, as
/// "setting: from → to".
fn consumer_changes(current: &consumer::Config, wanted: &ConsumerSettings) -> Vec<String> {
    let mut changes = Vec::new();
    note(&mut changes, "ack_wait", current.ack_wait, wanted.ack_wait);
    note(
        &mut changes,
        "max_ack_pending",
        current.max_ack_pending,
        wanted.max_ack_pending,
    );
    note(
        &mut changes,
        "max_deliver",
        current.max_deliver,
        wanted.max_deliver,
    );
    changes
}
