//! foco-rules against the real NATS JetStream and a real control API: events go in
//! on FOCO_EVENTS, jobs come out on FOCO_SMS.

mod lag;
mod pipeline;
mod scheduling;
mod store;
mod support;
