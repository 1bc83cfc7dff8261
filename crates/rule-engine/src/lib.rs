//! The Foco rule engine. Turns one event into SMS jobs: for each enabled rule of the event's source, the
//! CEL condition decides, the recipients and the body are rendered with minijinja,
//! and each (rule, recipient) becomes a job with a deterministic id.
//!
//! Pure and synchronous: no bus, no network. A rule that fails (bad expression,
//! missing variable, empty recipient) is reported and the other rules still run.

mod compiled;
mod condition;
pub mod encoding;
pub mod filters;
mod template;

use std::sync::Arc;

use foco_proto::v1::{EventEnvelope, Priority, ResolvedSource, Rule, SmsJob};
use moka::sync::Cache;

pub use compiled::CompiledRule;
pub use condition::ConditionError;
pub use template::TemplateError;

/// Longest body a rule may render (ten concatenated GSM-7 segments).
pub const MAX_BODY_CHARS: usize = 1530;

/// Why one rule produced no job for one event.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("condition does not compile: {0}")]
    ConditionCompile(String),
    #[error("condition failed: {0}")]
    Condition(#[from] ConditionError),
    #[error("template does not compile ({field}): {message}")]
    TemplateCompile { field: String, message: String },
    #[error("template failed ({field}): {source}")]
    Template {
        field: String,
        #[source]
        source: TemplateError,
    },
    #[error("recipient {index} rendered empty")]
    EmptyRecipient { index: usize },
    #[error("body rendered empty")]
    EmptyBody,
    #[error("body has {chars} characters, more than the limit of {MAX_BODY_CHARS}")]
    BodyTooLong { chars: usize },
}

#[derive(Debug)]
pub struct RuleFailure {
    pub rule_id: String,
    pub rule_name: String,
    pub error: RuleError,
}

/// What an event produced.
#[derive(Debug, Default)]
pub struct EventPlan {
    pub jobs: Vec<SmsJob>,
    pub failures: Vec<RuleFailure>,
    /// Rules whose condition was false.
    pub skipped: usize,
}

/// Why an event could not be evaluated at all.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event payload is not valid JSON")]
    PayloadNotJson(#[source] serde_json::Error),
}

/// Compiles rules once per version and evaluates events against them.
#[derive(Clone)]
pub struct Engine {
    compiled: Cache<(String, i64), Arc<Result<CompiledRule, String>>>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self {
            compiled: Cache::new(10_000),
        }
    }

    fn compiled_rule(&self, rule: &Rule) -> Arc<Result<CompiledRule, String>> {
        self.compiled
            .get_with((rule.id.clone(), rule.updated_at_ms), || {
                Arc::new(CompiledRule::compile(rule).map_err(|error| error.to_string()))
            })
    }

    /// Evaluates every enabled rule of `source` against `event`.
    pub fn plan(
        &self,
        event: &EventEnvelope,
        source: &ResolvedSource,
        now_ms: i64,
    ) -> Result<EventPlan, EventError> {
        let payload: serde_json::Value = if event.payload.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(&event.payload).map_err(EventError::PayloadNotJson)?
        };
        let inputs = EventInputs::new(event, source, payload);
        let mut plan = EventPlan::default();
        for rule in source.rules.iter().filter(|rule| rule.enabled) {
            let compiled = self.compiled_rule(rule);
            let compiled = match compiled.as_ref() {
                Ok(compiled) => compiled,
                Err(message) => {
                    plan.failures.push(RuleFailure {
                        rule_id: rule.id.clone(),
                        rule_name: rule.name.clone(),
                        error: RuleError::ConditionCompile(message.clone()),
                    });
                    continue;
                }
            };
            match compiled.evaluate(&inputs) {
                Ok(None) => plan.skipped += 1,
                Ok(Some(rendered)) => {
                    for recipient in rendered.recipients {
                        plan.jobs.push(SmsJob {
                            job_id: foco_bus::job_id(&event.event_id, &rule.id, &recipient),
                            account_id: event.account_id.clone(),
                            event_id: event.event_id.clone(),
                            source_id: event.source_id.clone(),
                            rule_id: rule.id.clone(),
                            to: recipient,
                            body: rendered.body.clone(),
                            provider: rule.provider.clone(),
                            from: rule.from.clone(),
                            priority: if rule.priority == Priority::Unspecified as i32 {
                                Priority::Transactional as i32
                            } else {
                                rule.priority
                            },
                            created_at_ms: now_ms,
                        });
                    }
                }
                Err(error) => plan.failures.push(RuleFailure {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    error,
                }),
            }
        }
        Ok(plan)
    }
}

/// The event as conditions and templates see it, converted once per event.
pub struct EventInputs {
    pub(crate) cel_event: cel::Value,
    pub(crate) cel_headers: cel::Value,
    pub(crate) event_type: String,
    pub(crate) template_context: minijinja::Value,
}

impl EventInputs {
    fn new(event: &EventEnvelope, source: &ResolvedSource, payload: serde_json::Value) -> Self {
        let headers: std::collections::BTreeMap<&str, &str> = event
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let account = source.account.as_ref();
        let source_name = source
            .source
            .as_ref()
            .map(|source| source.name.as_str())
            .unwrap_or("");
        let context = serde_json::json!({
            "event": payload,
            "event_type": event.event_type,
            "event_id": event.event_id,
            "headers": headers,
            "source": { "name": source_name },
            "account": {
                "name": account.map(|account| account.name.as_str()).unwrap_or(""),
                "timezone": account.map(|account| account.timezone.as_str()).unwrap_or("UTC"),
                "default_country": account.map(|account| account.default_country.as_str()).unwrap_or(""),
            },
        });
        Self {
            cel_event: cel::to_value(&context["event"]).unwrap_or(cel::Value::Null),
            cel_headers: cel::to_value(&context["headers"]).unwrap_or(cel::Value::Null),
            event_type: event.event_type.clone(),
            template_context: minijinja::Value::from(minijinja::value::Serde(&context)),
        }
    }
}

#[cfg(test)]
mod tests;
