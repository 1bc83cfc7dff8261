//! What the bus holds right now: each of Foco's streams with its settings and
//! backlog, and each durable consumer of it with what it has still to do. What
//! `foco-control bus-topology` prints for an operator.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::TryStreamExt;

use crate::BusNames;

#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("could not read stream {stream}")]
    Stream {
        stream: String,
        #[source]
        source: jetstream::context::GetStreamError,
    },
    #[error("could not read the state of stream {stream}")]
    Info {
        stream: String,
        #[source]
        source: jetstream::context::RequestError,
    },
    #[error("could not list the consumers of stream {stream}")]
    Consumers {
        stream: String,
        #[source]
        source: jetstream::stream::ConsumersError,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamState {
    pub name: String,
    pub subjects: Vec<String>,
    pub replicas: usize,
    pub retention: String,
    pub max_bytes: i64,
    pub duplicate_window: Duration,
    pub messages: u64,
    pub bytes: u64,
    pub consumers: Vec<ConsumerState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerState {
    pub name: String,
    pub filter_subject: String,
    pub ack_wait: Duration,
    pub max_ack_pending: i64,
    /// Messages not yet delivered to it.
    pub pending: u64,
    /// Delivered and not yet acknowledged.
    pub ack_pending: usize,
    pub redelivered: usize,
}

/// The streams and consumers of the bus named by `names`.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub streams: Vec<StreamState>,
    /// Streams no service has created yet (every service creates them at start).
    pub missing: Vec<String>,
}

/// Reads the state of Foco's streams and of their consumers.
pub async fn describe(
    jetstream: &jetstream::Context,
    names: &BusNames,
) -> Result<Topology, DescribeError> {
    let mut topology = Topology {
        streams: Vec::new(),
        missing: Vec::new(),
    };
    for name in [
        names.events_stream(),
        names.sms_stream(),
        names.receipts_stream(),
    ] {
        match describe_stream(jetstream, name.clone()).await? {
            Some(stream) => topology.streams.push(stream),
            None => topology.missing.push(name),
        }
    }
    Ok(topology)
}

/// `None` when the stream does not exist.
async fn describe_stream(
    jetstream: &jetstream::Context,
    name: String,
) -> Result<Option<StreamState>, DescribeError> {
    let mut stream = match jetstream.get_stream(&name).await {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(server)
                    if server.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            return Ok(None);
        }
        Err(source) => {
            return Err(DescribeError::Stream {
                stream: name,
                source,
            });
        }
    };
    let info = stream
        .info()
        .await
        .map_err(|source| DescribeError::Info {
            stream: name.clone(),
            source,
        })?
        .clone();
    let mut consumers: Vec<ConsumerState> = stream
        .consumers()
        .map_ok(|consumer| ConsumerState {
            name: consumer.name,
            filter_subject: consumer.config.filter_subject,
            ack_wait: consumer.config.ack_wait,
            max_ack_pending: consumer.config.max_ack_pending,
            pending: consumer.num_pending,
            ack_pending: consumer.num_ack_pending,
            redelivered: consumer.num_redelivered,
        })
        .try_collect()
        .await
        .map_err(|source| DescribeError::Consumers {
            stream: name.clone(),
            source,
        })?;
    consumers.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(Some(StreamState {
        name,
        subjects: info.config.subjects,
        replicas: info.config.num_replicas,
        retention: retention_name(info.config.retention).to_owned(),
        max_bytes: info.config.max_bytes,
        duplicate_window: info.config.duplicate_window,
        messages: info.state.messages,
        bytes: info.state.bytes,
        consumers,
    }))
}

fn retention_name(retention: stream::RetentionPolicy) -> &'static str {
    match retention {
        stream::RetentionPolicy::Limits => "limits",
        stream::RetentionPolicy::Interest => "interest",
        stream::RetentionPolicy::WorkQueue => "work queue",
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, stream) in self.streams.iter().enumerate() {
            if index > 0 {
                writeln!(out)?;
            }
            writeln!(
                out,
                "{}  subjects {}  replicas {}  {}  max {} bytes  duplicate window {:?}",
                stream.name,
                stream.subjects.join(","),
                stream.replicas,
                stream.retention,
                stream.max_bytes,
                stream.duplicate_window,
            )?;
            writeln!(
                out,
                "  holds {} messages, {} bytes",
                stream.messages, stream.bytes
            )?;
            if stream.consumers.is_empty() {
                writeln!(out, "  no consumers")?;
            }
            for consumer in &stream.consumers {
                writeln!(
                    out,
                    "  consumer {}  filter {}  pending {}  ack pending {} (at most {})  redelivered {}  ack wait {:?}",
                    consumer.name,
                    consumer.filter_subject,
                    consumer.pending,
                    consumer.ack_pending,
                    consumer.max_ack_pending,
                    consumer.redelivered,
                    consumer.ack_wait,
                )?;
            }
        }
        for name in &self.missing {
            if !self.streams.is_empty() {
                writeln!(out)?;
            }
            writeln!(
                out,
                "{name}  not created yet: every service creates it when it starts"
            )?;
        }
        Ok(())
    }
}
